"""BatchTopK SAE (Bussmann et al. 2024): keep the B*k largest activations across the batch.

Training selects per batch; inference uses one global threshold theta, an exponential moving
average of the smallest selected activation, so the saved SAE is an ordinary JumpReLU. The
threshold statistic is kept in float64 because bf16/fp32 rounding otherwise freezes the EMA.
"""

from __future__ import annotations

from math import inf
from typing import Literal

import torch
import torch.distributed as dist
from pydantic import Field
from torch import Tensor

from saeprobe.errors import FormatError
from saeprobe.sae.base import SAE, StepContext, TrainOutput
from saeprobe.sae.jumprelu import JumpReLUConfig, JumpReLUSAE
from saeprobe.sae.registry import register
from saeprobe.sae.sparse_ops import batch_topk
from saeprobe.sae.sparse_step import finish_sparse_topk_step, pre_dense, use_sparse
from saeprobe.sae.topk import TopKConfig, TopKSAE, finish_topk_step


class BatchTopKConfig(TopKConfig):
    architecture: Literal["batchtopk"] = "batchtopk"  # type: ignore[assignment]
    # Selection is over the whole batch, so the mean per row may be fractional.
    k: float = Field(32, description="mean active latents per row")  # type: ignore[assignment]
    threshold_momentum: float = Field(
        0.01, gt=0, le=1, description="EMA weight of each batch's threshold estimate"
    )


@register
class BatchTopKSAE(TopKSAE):
    architecture = "batchtopk"
    config_class = BatchTopKConfig
    saelens_architecture = "jumprelu"
    cfg: BatchTopKConfig

    def create_extra_parameters(self) -> None:
        super().create_extra_parameters()
        # Negative means "not estimated yet".
        self.register_buffer("threshold", torch.tensor(-1.0, dtype=torch.float64))

    def reset_extra_parameters(self) -> None:
        super().reset_extra_parameters()
        self.threshold.fill_(-1.0)

    def encode(self, x: Tensor) -> Tensor:
        z = torch.relu(self.pre_activation(x))
        if self.threshold < 0:  # untrained: select over the rows given, as in training
            return self._select(z)
        return z * (z > self.threshold.to(z.dtype))

    def _select(self, z: Tensor) -> Tensor:
        rows = z.reshape(-1, z.shape[-1]).shape[0]
        flat = z.flatten()
        vals, idx = flat.topk(max(1, round(self.cfg.k * rows)))
        return torch.zeros_like(flat).scatter(0, idx, vals).view_as(z)

    def training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        if use_sparse(self, x, self.cfg.k):
            z = pre_dense(self, x)
            support, vals = batch_topk(z, max(1, round(self.cfg.k * x.shape[0])))
            self._update_threshold(vals)
            return finish_sparse_topk_step(self, x, z, support, vals, ctx)
        return self.dense_training_step(x, ctx)

    def dense_training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        z = self.pre_activation(x)
        f = self._select(torch.relu(z))
        self._update_threshold(f[f > 0])
        return finish_topk_step(self, x, z, f, self.decode(f), ctx)

    @torch.no_grad()
    def _update_threshold(self, selected: Tensor) -> None:
        positive = selected[selected > 0]
        estimate = positive.min().double() if positive.numel() else self.threshold.new_tensor(inf)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # Data-parallel training: the smallest selected activation over all ranks' rows, so
            # every rank keeps the same threshold.
            dist.all_reduce(estimate, op=dist.ReduceOp.MIN)
        if not torch.isfinite(estimate):
            return
        if self.threshold < 0:
            self.threshold.copy_(estimate)
        else:
            m = self.cfg.threshold_momentum
            self.threshold.mul_(1 - m).add_(m * estimate)

    def export_for_inference(self) -> SAE:
        if self.threshold < 0:
            # A JumpReLU needs the threshold; a scalar -1 is neither SAELens's format nor ours.
            raise FormatError(
                "this BatchTopK SAE has no inference threshold yet (it is estimated during "
                "training); train it for at least one step before saving or exporting it"
            )
        c = self.cfg
        jcfg = JumpReLUConfig(
            d_in=c.d_in,
            d_sae=c.d_sae,
            apply_b_dec_to_input=c.apply_b_dec_to_input,
            encoder_init_scale=c.encoder_init_scale,
            threshold_init=max(float(self.threshold), 1e-6),
        )
        out = JumpReLUSAE(jcfg).to(self.W_dec.device)
        with torch.no_grad():
            for name in ("W_enc", "W_dec", "b_dec", "b_enc"):
                getattr(out, name).copy_(getattr(self, name))
            out.threshold.fill_(float(self.threshold))
        return out

    @torch.no_grad()
    def load_exported(self, exported: JumpReLUSAE) -> None:
        """Inverse of `export_for_inference`: take the weights and the one threshold of a JumpReLU
        whose thresholds are all equal (a JumpReLU with per-latent thresholds is no BatchTopK)."""
        threshold = exported.threshold
        if not bool((threshold == threshold[0]).all()):
            raise ValueError("a JumpReLU with per-latent thresholds cannot become a BatchTopK")
        for name in ("W_enc", "W_dec", "b_dec", "b_enc"):
            getattr(self, name).copy_(getattr(exported, name))
        self.threshold.fill_(float(threshold[0]))
