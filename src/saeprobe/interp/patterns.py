"""Surface patterns of prompts: cheap text predicates that tell prompt sources apart.

A latent is flagged with a pattern when its most-activating prompts share it far more often than
the prompts of the split do (`flag_pattern`): at least half of them have it, and the odds of
having it are at least 3x the split's (counts smoothed by 1/2). Of the patterns that pass, the
one with the largest excess (its rate among the top prompts minus its rate in the split) is
named, except that an ending pattern wins outright when the latent peaks on the prompt's last
token in at least half of the top prompts shown: then it reads the ending itself. The patterns
are the cues the study's dataset debugging found, and their relatives:

    question_mark     ends in "?"
    ending_period     ends in "."
    ending_bracket    ends in ")" or "]" or "}"
    ending_other      ends in another punctuation mark (! ; : , quote, ...)
    brackets          contains a bracket anywhere
    all_caps          at least 60 % of its letters are capitals
    lowercase_start   starts with a lower-case letter
    repeated_prefix   starts with the split's most common 3-word opening
    long              more tokens than 75 % of the split's prompts (max pooling reads more
                      tokens of a longer prompt, so length alone can move a pooled latent)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Flag when at least this share of the top examples has the pattern...
MIN_TOP_RATE = 0.5
# ...and the odds of having it are at least this many times the split's.
MIN_ODDS_RATIO = 3.0
ENDINGS = ("question_mark", "ending_period", "ending_bracket", "ending_other")

_BRACKETS = set("()[]{}")
_CLOSING = set(")]}")
_PUNCT = set("!;:,\"'`*-")


def _last(text: str) -> str:
    stripped = text.rstrip()
    return stripped[-1] if stripped else ""


def _caps(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) >= 0.6 * len(letters)


def _opening(text: str, n: int = 3) -> str:
    return " ".join(re.findall(r"\S+", text.lower())[:n])


@dataclass(frozen=True)
class Pattern:
    name: str
    test: Callable[[str], bool]


def split_patterns(texts: Sequence[str], n_tokens: Sequence[int]) -> list[Pattern]:
    """The patterns, with the split-dependent ones (repeated prefix, length) fixed on `texts`."""
    openings = Counter(_opening(t) for t in texts)
    common, count = openings.most_common(1)[0] if openings else ("", 0)
    long_cut = float(np.percentile(n_tokens, 75)) if len(n_tokens) else 0.0
    lengths = dict(zip(texts, n_tokens, strict=True))
    patterns = [
        Pattern("question_mark", lambda t: _last(t) == "?"),
        Pattern("ending_period", lambda t: _last(t) == "."),
        Pattern("ending_bracket", lambda t: _last(t) in _CLOSING),
        Pattern("ending_other", lambda t: _last(t) in _PUNCT),
        Pattern("brackets", lambda t: any(c in _BRACKETS for c in t)),
        Pattern("all_caps", _caps),
        Pattern("lowercase_start", lambda t: t.lstrip()[:1].islower()),
        Pattern("long", lambda t: lengths.get(t, 0) > long_cut),
    ]
    if count >= 2:
        patterns.append(Pattern("repeated_prefix", lambda t: _opening(t) == common))
    return patterns


def rate(pattern: Pattern, texts: Sequence[str]) -> float:
    return float(np.mean([pattern.test(t) for t in texts])) if len(texts) else 0.0


@dataclass(frozen=True)
class Flag:
    name: str
    top_rate: float
    split_rate: float
    odds_ratio: float


def _odds(k: float, n: int) -> float:
    return (k + 0.5) / (n - k + 0.5)


def flag_pattern(
    top_texts: Sequence[str],
    split_texts: Sequence[str],
    patterns: Sequence[Pattern],
    peaks_at_end: float = 0.0,
) -> Flag | None:
    """The pattern that best describes `top_texts` against `split_texts`, if any passes.

    `peaks_at_end` is the share of the top prompts whose largest activation is on their last
    token. Ties go to the earlier pattern in `patterns` (the specific endings come first)."""
    passing: list[Flag] = []
    n_top, n_split = len(top_texts), len(split_texts)
    if not n_top or not n_split:
        return None
    for p in patterns:
        k_top = sum(p.test(t) for t in top_texts)
        k_split = sum(p.test(t) for t in split_texts)
        ratio = _odds(k_top, n_top) / _odds(k_split, n_split)
        if k_top / n_top >= MIN_TOP_RATE and ratio >= MIN_ODDS_RATIO:
            passing.append(Flag(p.name, k_top / n_top, k_split / n_split, ratio))
    if not passing:
        return None
    endings = [f for f in passing if f.name in ENDINGS]
    if endings and peaks_at_end >= 0.5:
        passing = endings
    return max(passing, key=lambda f: f.top_rate - f.split_rate)
