"""The deterministic `baseline` explainer and scorer: no LLM, a documented lower bound.

**Explanation**: the latent's most characteristic tokens. Over the explainer's activating
examples, each distinct token (compared stripped and lower-cased) gets the sum of the latent's
activation on its occurrences, divided by one plus its number of occurrences in the
non-activating examples (tokens common everywhere are not characteristic). The top
`n_tokens` by that score, strongest first, make the explanation `tokens "A", "B", "C"` (each
token JSON-quoted).

**Prediction**, from the explanation text alone (so the baseline can score any explainer's
explanation): the explanation's quoted strings, or else its words of three or more letters, are
matched against the example's tokens. The k-th listed token has weight 1 / (k + 1).
- simulation: 9 x the largest weight among matched tokens (0 when nothing matches);
- detection: yes when anything matches, with probability = that value / 9;
- fuzzing: the fraction of marked tokens that match; yes when at least half do.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence

from saeprobe.interp.records import Example

N_TOKENS = 5
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_WORD = re.compile(r"[A-Za-z0-9_]{3,}")


def norm(token: str) -> str:
    return token.strip().lower()


def characteristic_tokens(
    active: Sequence[Example], inactive: Sequence[Example], n: int = N_TOKENS
) -> list[str]:
    weight: dict[str, float] = defaultdict(float)
    spelling: dict[str, str] = {}
    for e in active:
        for tok, act in zip(e.tokens, e.acts, strict=True):
            if act > 0:
                key = norm(tok)
                weight[key] += act
                spelling.setdefault(key, tok)
    background: dict[str, int] = defaultdict(int)
    for e in inactive:
        for tok in e.tokens:
            background[norm(tok)] += 1
    scored = sorted(
        ((w / (1 + background[k]), k) for k, w in weight.items()), key=lambda t: (-t[0], t[1])
    )
    return [spelling[k] for _, k in scored[:n]]


def baseline_explanation(active: Sequence[Example], inactive: Sequence[Example]) -> str:
    tokens = characteristic_tokens(active, inactive)
    if not tokens:
        return ""
    return "tokens " + ", ".join(json.dumps(t, ensure_ascii=False) for t in tokens)


def explanation_terms(explanation: str) -> list[str]:
    """The normalised terms of an explanation, strongest first (duplicates dropped)."""
    quoted = []
    for raw in _QUOTED.findall(explanation or ""):
        try:
            quoted.append(json.loads(f'"{raw}"'))
        except json.JSONDecodeError:
            quoted.append(raw)
    terms = quoted or _WORD.findall(explanation or "")
    out: list[str] = []
    for t in terms:
        key = norm(t)
        if key not in out:
            out.append(key)
    return out


def _weights(explanation: str) -> dict[str, float]:
    return {t: 1.0 / (k + 1) for k, t in enumerate(explanation_terms(explanation))}


def simulate(explanation: str, example: Example) -> float:
    weights = _weights(explanation)
    best = max((weights.get(norm(t), 0.0) for t in example.tokens), default=0.0)
    return 9.0 * best


def detect(explanation: str, example: Example) -> float:
    """Probability of 'yes'."""
    return simulate(explanation, example) / 9.0


def fuzz(explanation: str, example: Example, marks: set[int]) -> float:
    """Probability of 'yes': the fraction of marked tokens that match the explanation."""
    if not marks:
        return 0.0
    weights = _weights(explanation)
    hits = sum(1 for i in marks if norm(example.tokens[i]) in weights)
    return hits / len(marks)
