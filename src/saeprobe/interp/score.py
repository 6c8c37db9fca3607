"""Score explanations on held-out examples, three ways.

- **simulation** (the study's, after Bills et al.): for each held-out example (top, quantile and
  non-activating) the scorer predicts the quantised activation of the example's strongest
  token, 0..9. The truth is `quantise(value / latent max)`: 0 for a non-activating example,
  else ceil(9 x value / max) clipped to 1..9 (so any firing is at least 1 and the latent's
  maximum is 9). The score is the Spearman correlation of truth and prediction. A scorer with
  log-probabilities predicts the expected digit (as the OpenAI simulator does), otherwise the
  digit it writes. A constant prediction carries no information and scores 0.
- **detection** (Paulo et al.): does the example contain what the explanation describes? As
  many non-activating as activating examples (when the records have them).
- **fuzzing** (Paulo et al.): activating examples with their active tokens marked against
  non-activating ones marked at the positions of a randomly paired activating example: are the
  marked tokens the ones the explanation describes?

Detection and fuzzing score balanced accuracy (mean of the true-positive and true-negative
rates; 0.5 is chance), and AUROC of P(yes) when every prediction came with
log-probabilities.

A reply that cannot be parsed counts as `malformed` and as the neutral answer (0 / no); it is
counted per latent and in the run's totals, and never stops a run.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from saeprobe.interp.backends import Request
from saeprobe.interp.backends import baseline as base
from saeprobe.interp.prompts import (
    DETECTION_QUESTION,
    DIGITS,
    FUZZING_QUESTION,
    SIMULATION_QUESTION,
    YES_NO,
    active_marks,
    excerpt,
    parse_digit,
    parse_yes_no,
    score_messages,
)
from saeprobe.interp.records import Example

METHODS = ("simulation", "detection", "fuzzing")
LEVELS = 9


@dataclass(frozen=True)
class Item:
    explanation: str
    example: Example
    marks: frozenset[int] | None = None  # fuzzing only


@dataclass(frozen=True)
class Prediction:
    value: float  # simulation: predicted level 0..9; detection / fuzzing: 1 yes, 0 no
    prob: float | None  # P(yes) for detection / fuzzing, when log-probabilities were read
    malformed: bool
    failed: bool = False


@dataclass
class HeldOut:
    """A latent's held-out examples and its maximum activation (for the quantisation)."""

    active: list[Example]
    inactive: list[Example]
    latent_max: float


@dataclass
class Task:
    """The items one latent is scored on, with their truths."""

    method: str
    items: list[Item]
    truth: list[float]
    info: dict[str, Any] = field(default_factory=dict)


def quantise(value: float, latent_max: float) -> int:
    if value <= 0 or latent_max <= 0:
        return 0
    return int(min(LEVELS, max(1, math.ceil(LEVELS * value / latent_max - 1e-9))))


def build_task(method: str, explanation: str, held: HeldOut, seed: int) -> Task:
    if method == "simulation":
        examples = held.active + held.inactive
        truth = [float(quantise(e.value, held.latent_max)) for e in examples]
        return Task(method, [Item(explanation, e) for e in examples], truth)
    n = len(held.active)
    inactive = held.inactive[:n]
    if method == "detection":
        items = [Item(explanation, e) for e in held.active + inactive]
        return Task(method, items, [1.0] * n + [0.0] * len(inactive))
    if method == "fuzzing":
        rng = random.Random(seed)
        positives = [Item(explanation, e, frozenset(active_marks(e))) for e in held.active]
        negatives = []
        for e in inactive:
            borrowed = rng.choice(positives).marks if positives else frozenset()
            marks = frozenset(i for i in borrowed if i < len(e.tokens)) or frozenset({0})
            negatives.append(Item(explanation, e, marks))
        return Task(method, positives + negatives, [1.0] * n + [0.0] * len(negatives))
    raise ValueError(f"unknown scoring method {method!r}")


class Scorer:
    """Predictions for items, from an LLM backend or (backend None) the baseline."""

    def __init__(self, spec: str, backend=None):
        self.spec, self.backend = spec, backend

    def predict(self, method: str, items: Sequence[Item]) -> list[Prediction]:
        if self.backend is None:
            return [self._baseline(method, item) for item in items]
        requests = [self._request(method, item) for item in items]
        return [self._parse(method, r) for r in self.backend.complete(requests)]

    @staticmethod
    def _baseline(method: str, item: Item) -> Prediction:
        if method == "simulation":
            return Prediction(base.simulate(item.explanation, item.example), None, False)
        if method == "detection":
            p = base.detect(item.explanation, item.example)
        else:
            p = base.fuzz(item.explanation, item.example, set(item.marks or ()))
        return Prediction(1.0 if p >= 0.5 else 0.0, p, False)

    @staticmethod
    def _request(method: str, item: Item) -> Request:
        if method == "simulation":
            text, question, choices = excerpt(item.example.tokens), SIMULATION_QUESTION, DIGITS
        elif method == "detection":
            text, question, choices = excerpt(item.example.tokens), DETECTION_QUESTION, YES_NO
        else:
            text = excerpt(item.example.tokens, item.marks or ())
            question, choices = FUZZING_QUESTION, YES_NO
        return Request(score_messages(item.explanation, text, question), 3, choices)

    @staticmethod
    def _parse(method: str, reply) -> Prediction:
        failed = reply.error is not None
        if method == "simulation":
            if reply.probs:
                expected = sum(int(d) * p for d, p in reply.probs.items())
                return Prediction(expected, None, False, failed)
            digit = parse_digit(reply.text)
            return Prediction(digit or 0.0, None, digit is None, failed)
        if reply.probs:
            p = reply.probs.get("yes", 0.0)
            return Prediction(1.0 if p >= 0.5 else 0.0, p, False, failed)
        answer = parse_yes_no(reply.text)
        return Prediction(1.0 if answer else 0.0, None, answer is None, failed)


# --- metrics ---------------------------------------------------------------------------------


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation with average ranks for ties; None if `a` is constant, 0.0 if
    only `b` is (a constant prediction carries no information)."""
    from scipy.stats import rankdata

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or np.all(x == x[0]):
        return None
    if np.all(y == y[0]):
        return 0.0
    rx, ry = rankdata(x), rankdata(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def balanced_accuracy(truth: Sequence[float], pred: Sequence[float]) -> float | None:
    t, p = np.asarray(truth) > 0.5, np.asarray(pred) > 0.5
    if t.all() or (~t).all():
        return None
    return float(0.5 * ((p & t).sum() / t.sum() + (~p & ~t).sum() / (~t).sum()))


def auroc(truth: Sequence[float], prob: Sequence[float]) -> float | None:
    """Mann-Whitney AUROC with ties counted one half; None with a single class."""
    t, s = np.asarray(truth) > 0.5, np.asarray(prob, dtype=float)
    pos, neg = s[t], s[~t]
    if not pos.size or not neg.size:
        return None
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def finish(task: Task, preds: Sequence[Prediction]) -> dict[str, Any]:
    """The latent's score for `task.method` and the details behind it."""
    values = [p.value for p in preds]
    out: dict[str, Any] = {
        "n_examples": len(preds),
        "malformed": sum(p.malformed for p in preds),
        "failed": sum(p.failed for p in preds),
    }
    if task.method == "simulation":
        out["score"] = spearman(task.truth, values)
        out["constant_prediction"] = bool(values) and all(v == values[0] for v in values)
    else:
        out["score"] = balanced_accuracy(task.truth, values)
        probs = [p.prob for p in preds]
        out["auroc"] = auroc(task.truth, probs) if all(p is not None for p in probs) else None
    out["truth"] = task.truth
    out["prediction"] = [round(v, 4) for v in values]
    return out
