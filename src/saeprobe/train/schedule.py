"""Learning-rate and sparsity-coefficient schedules, pure functions of the step."""

from __future__ import annotations

import math

from saeprobe.train.config import TrainConfig


def lr_at(step: int, cfg: TrainConfig, base_lr: float) -> float:
    """Warm-up from 0.1*lr (linear, or cosine: 0.1 + 0.9 (1 - cos(pi t / T)) / 2), constant, then
    linear decay to 0 over the last decay steps. A warm-up longer than the run is kept as given:
    the rate never reaches lr."""
    scale = 1.0
    if cfg.lr_warmup_steps and step < cfg.lr_warmup_steps:
        t = step / cfg.lr_warmup_steps
        if cfg.lr_warmup == "cosine":
            t = (1 - math.cos(math.pi * t)) / 2
        scale = 0.1 + 0.9 * t
    decay = cfg.decay_steps
    if decay and step >= cfg.steps - decay:
        scale = min(scale, (cfg.steps - step) / decay)
    return base_lr * scale


def sparsity_scale_at(step: int, cfg: TrainConfig) -> float:
    """Multiplier on the sparsity coefficient: linear from 0 to 1 over the warm-up."""
    warm = cfg.sparsity_warmup
    return 1.0 if warm == 0 else min(1.0, (step + 1) / warm)
