"""How per-token projections of one prompt become one score: the six aggregation heads.

A head sees x [b, L, M, P]: for b prompts padded to L tokens, M independent models (the
trainer fits many at once: CV folds x weight decays, or seeds), each with P per-token linear
projections of the (standardised) token vector y_s; `mask` [b, L] marks real tokens. It
returns [b, M] scores; the trainer adds each model's bias. With a_s = w^T y_s:

    max_of_logits  max_s a_s                                  P = 1
    softmax        sum_s softmax(a / tau)_s a_s               P = 1
    attention      sum_h sum_s softmax(q_h^T y)_s v_h^T y_s   P = 2H (H queries, H values)
    multimax       sum_h max_s v_h^T y_s                      P = H
    ema            max_s e_s, e_s = alpha a_s + (1 - alpha) e_(s-1), e_0 = 0
    rolling_mean   max over windows of T consecutive tokens of mean a; a prompt shorter than
                   T is one window of all its tokens

Hard maxima are used in training too: their subgradient (the arg-max token) trains these
probes well under Adam, so no smooth surrogate is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from saeprobe.errors import ConfigError

__all__ = ["PER_TOKEN_PROBES", "Head", "make_head"]

PER_TOKEN_PROBES = ("max_of_logits", "softmax", "attention", "multimax", "ema", "rolling_mean")


def _masked_max(x: Tensor, mask: Tensor) -> Tensor:
    """max over dim 1 of x [b, L, ...] where mask [b, L] is True."""
    fill = mask.reshape(*mask.shape, *([1] * (x.dim() - 2)))
    return x.masked_fill(~fill, float("-inf")).max(dim=1).values


def _masked_softmax_sum(scores: Tensor, values: Tensor, mask: Tensor) -> Tensor:
    """sum over dim 1 of softmax(scores) * values, both [b, L, ...], padding excluded."""
    fill = mask.reshape(*mask.shape, *([1] * (scores.dim() - 2)))
    weights = torch.softmax(scores.masked_fill(~fill, float("-inf")), dim=1)
    return (weights * values.masked_fill(~fill, 0.0)).sum(dim=1)


@dataclass(frozen=True)
class Head:
    """One aggregation; `n_projections` per model, `__call__` as in the module docstring."""

    kind: str
    heads: int = 1
    temperature: float = 5.0
    alpha: float = 0.5
    window: int = 10

    @property
    def n_projections(self) -> int:
        if self.kind == "attention":
            return 2 * self.heads
        if self.kind == "multimax":
            return self.heads
        return 1

    def __call__(self, x: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
        if self.kind == "max_of_logits":
            return _masked_max(x[..., 0], mask)
        if self.kind == "softmax":
            a = x[..., 0]
            return _masked_softmax_sum(a / self.temperature, a, mask)
        if self.kind == "attention":
            h = self.heads
            return _masked_softmax_sum(x[..., :h], x[..., h:], mask).sum(dim=-1)
        if self.kind == "multimax":
            return _masked_max(x, mask).sum(dim=-1)
        if self.kind == "ema":
            return _masked_max(self._ema(x[..., 0], mask), mask)
        return self._rolling_mean(x[..., 0], mask, lengths)

    def _ema(self, a: Tensor, mask: Tensor) -> Tensor:
        """e_s for a [b, L, M] by a doubling scan: after step k, x_s holds
        sum_{j < 2^k} alpha (1 - alpha)^j a_(s-j); ceil(log2 L) steps give the exact recursion
        (from e_0 = 0) with log L shifted adds instead of L sequential ones."""
        length = a.shape[1]
        x = self.alpha * a.masked_fill(~mask[..., None], 0.0)
        shift, decay = 1, 1.0 - self.alpha
        while shift < length and decay > 0.0:
            x = x + decay * F.pad(x[:, :-shift], (0, 0, shift, 0))
            shift, decay = 2 * shift, decay * decay
        return x

    def _rolling_mean(self, a: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
        b, length, m = a.shape
        t = self.window
        cum = F.pad(a.masked_fill(~mask[..., None], 0.0).cumsum(dim=1), (0, 0, 1, 0))
        whole = cum[torch.arange(b), lengths] / lengths[:, None].to(a.dtype)
        if length < t:
            return whole
        windows = (cum[:, t:] - cum[:, :-t]) / t  # window ending at token t-1+i
        valid = torch.arange(length - t + 1)[None, :] < (lengths - t + 1)[:, None]
        best = _masked_max(windows, valid)
        return torch.where((lengths >= t)[:, None], best, whole)


def make_head(
    kind: str,
    *,
    attention_heads: int = 1,
    multimax_heads: int = 4,
    temperature: float = 5.0,
    alpha: float = 0.5,
    window: int = 10,
) -> Head:
    if kind not in PER_TOKEN_PROBES:
        raise ConfigError(f"unknown per-token probe {kind!r}; use one of {PER_TOKEN_PROBES}")
    if temperature <= 0:
        raise ConfigError(f"softmax temperature {temperature} must be positive, e.g. 5")
    if not 0 < alpha <= 1:
        raise ConfigError(f"ema alpha {alpha} must be in (0, 1], e.g. 0.5")
    if window < 1:
        raise ConfigError(f"rolling_mean window {window} must be at least 1, e.g. 10")
    if attention_heads < 1 or multimax_heads < 1:
        raise ConfigError("attention_heads and multimax_heads must be at least 1")
    heads = {"attention": attention_heads, "multimax": multimax_heads}.get(kind, 1)
    return Head(kind, heads=heads, temperature=temperature, alpha=alpha, window=window)
