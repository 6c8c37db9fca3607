"""Latent firing frequencies and the high-frequency / dead summaries derived from them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# A latent that fires on at least 10 % of tokens is "high-frequency" (GDM, March 2025).
HIGH_FREQUENCY = 0.1


@dataclass
class FrequencySummary:
    n_high_frequency: int
    frac_high_frequency: float
    n_dead: int
    dead_fraction: float


def summarize_frequencies(freq: Tensor, high: float = HIGH_FREQUENCY) -> FrequencySummary:
    """`freq` [d_sae] is each latent's fraction of rows with a non-zero activation."""
    if freq.ndim != 1 or freq.numel() == 0:
        raise ValueError(f"frequencies must be a non-empty vector, got shape {tuple(freq.shape)}")
    n = freq.numel()
    n_high = int((freq >= high).sum())
    n_dead = int((freq == 0).sum())
    return FrequencySummary(n_high, n_high / n, n_dead, n_dead / n)


def firing_frequency(fire_counts: Tensor, n_rows: int) -> Tensor:
    return fire_counts.double() / max(n_rows, 1)


def log10_frequency(freq: Tensor, floor: float = 1e-10) -> Tensor:
    """log10 frequency with dead latents clamped to `floor`, for histograms."""
    return torch.log10(freq.clamp_min(floor))
