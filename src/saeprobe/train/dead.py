"""Dead-latent tracking: a latent is dead once it has not fired for N consecutive rows."""

from __future__ import annotations

import torch
from torch import Tensor


class DeadLatentTracker:
    def __init__(self, d_sae: int, dead_after: int, device: torch.device | str = "cpu"):
        self.dead_after = dead_after
        self.rows_since_fired = torch.zeros(d_sae, dtype=torch.int64, device=device)

    def update(self, fire_counts: Tensor, n_rows: int) -> None:
        fired = fire_counts > 0
        self.rows_since_fired.add_(n_rows).masked_fill_(fired, 0)

    @property
    def dead_mask(self) -> Tensor:
        return self.rows_since_fired >= self.dead_after

    @property
    def dead_fraction(self) -> float:
        return float(self.dead_mask.float().mean())
