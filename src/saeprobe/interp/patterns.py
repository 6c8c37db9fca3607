"""Surface patterns of prompts: cheap text predicates that tell prompt sources apart.

A latent is flagged with a pattern when its most-activating prompts share it far more often than
the prompts of the split do (`flag_pattern`). The patterns are the cues the study's dataset
debugging found, and their relatives:

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
# ...and at least this many times the split's own rate.
MIN_LIFT = 2.0

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

    @property
    def lift(self) -> float:
        return self.top_rate / self.split_rate if self.split_rate > 0 else float("inf")


def flag_pattern(
    top_texts: Sequence[str], split_texts: Sequence[str], patterns: Sequence[Pattern]
) -> Flag | None:
    """The pattern most over-represented among `top_texts`, if any passes both thresholds.

    Ties go to the earlier pattern in `patterns` (the more specific endings come first)."""
    best: Flag | None = None
    for p in patterns:
        top, base = rate(p, top_texts), rate(p, split_texts)
        if top < MIN_TOP_RATE or top < MIN_LIFT * base:
            continue
        flag = Flag(p.name, top, base)
        if best is None or (flag.top_rate - flag.split_rate) > (best.top_rate - best.split_rate):
            best = flag
    return best
