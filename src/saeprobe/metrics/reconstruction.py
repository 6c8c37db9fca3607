"""Reconstruction and sparsity metrics, accumulated exactly over a whole evaluation set.

    FVU  = sum ||x - x_hat||^2 / sum ||x - mean(x)||^2     (mean over the *whole* set)
    NMSE = sum ||x - x_hat||^2 / sum ||x||^2
    L0   = mean number of non-zero latents per row

Sums are kept in float64 and divided once at the end; averaging per-batch ratios is biased, and
measuring variance against zero instead of the mean flatters the SAE.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from saeprobe.metrics.frequency import firing_frequency, summarize_frequencies


@dataclass
class ReconstructionAccumulator:
    d_sae: int
    rows: int = 0
    sq_error: float = 0.0
    sum_sq: float = 0.0
    sum_x: Tensor | None = None
    l0_values: list[Tensor] = field(default_factory=list)
    cos_sum: float = 0.0
    fire_counts: Tensor | None = None

    def update(self, x: Tensor, x_hat: Tensor, latents: Tensor) -> None:
        x, x_hat = x.double(), x_hat.double()
        active = latents != 0
        self.rows += x.shape[0]
        self.sq_error += float((x - x_hat).pow(2).sum())
        self.sum_sq += float(x.pow(2).sum())
        sx = x.sum(0)
        self.sum_x = sx if self.sum_x is None else self.sum_x + sx
        self.l0_values.append(active.sum(-1).cpu())
        self.cos_sum += float(torch.nn.functional.cosine_similarity(x, x_hat, dim=-1).sum())
        counts = active.sum(0).cpu()
        self.fire_counts = counts if self.fire_counts is None else self.fire_counts + counts

    def result(self) -> dict[str, float | int]:
        if self.rows == 0:
            raise ValueError("no rows were evaluated; the evaluation set is empty")
        mean = self.sum_x / self.rows
        total_var = self.sum_sq - self.rows * float(mean.pow(2).sum())
        l0 = torch.cat(self.l0_values).double()
        freq = firing_frequency(self.fire_counts, self.rows)
        summary = summarize_frequencies(freq)
        return {
            "rows": self.rows,
            "l0": float(l0.mean()),
            "l0_median": float(l0.median()),
            "fvu": self.sq_error / total_var if total_var > 0 else float("nan"),
            "nmse": self.sq_error / self.sum_sq if self.sum_sq > 0 else float("nan"),
            "explained_variance": 1 - self.sq_error / total_var if total_var > 0 else float("nan"),
            "cosine": self.cos_sum / self.rows,
            "n_high_frequency": summary.n_high_frequency,
            "frac_high_frequency": summary.frac_high_frequency,
            "dead_fraction": summary.dead_fraction,
        }

    def frequencies(self) -> Tensor:
        return firing_frequency(self.fire_counts, self.rows)


@torch.no_grad()
def evaluate_on_tensor(sae, data: Tensor, batch_size: int = 4096) -> tuple[dict, Tensor]:
    """Metrics of `sae` (raw units) on rows of `data`; returns (metrics, per-latent frequency)."""
    sae.check_input(data)
    acc = ReconstructionAccumulator(sae.d_sae)
    device = next(sae.parameters()).device
    for i in range(0, data.shape[0], batch_size):
        x = data[i : i + batch_size].to(device, torch.float32)
        f = sae.encode(x)
        acc.update(x, sae.decode(f), f)
    return acc.result(), acc.frequencies()
