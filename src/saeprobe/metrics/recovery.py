"""How well an SAE's decoder recovers a known (planted) dictionary."""

from __future__ import annotations

import torch
from torch import Tensor


def feature_recovery(planted: Tensor, decoder: Tensor, threshold: float = 0.9) -> dict[str, float]:
    """For each planted direction [n, d], the best cosine with any decoder row [m, d].

    recovered_fraction is the share of planted directions whose best cosine is >= threshold.
    """
    if planted.shape[-1] != decoder.shape[-1]:
        raise ValueError(f"planted width {planted.shape[-1]} != decoder width {decoder.shape[-1]}")
    best = max_cosines(planted, decoder)
    return {
        "recovered_fraction": float((best >= threshold).double().mean()),
        "mean_max_cosine": float(best.mean()),
    }


def max_cosines(planted: Tensor, decoder: Tensor) -> Tensor:
    """Best cosine of each planted direction with any decoder row."""
    p = torch.nn.functional.normalize(planted.double(), dim=-1)
    w = torch.nn.functional.normalize(decoder.double(), dim=-1)
    return (p @ w.T).max(dim=1).values
