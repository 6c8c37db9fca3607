"""JumpReLU SAE (Rajamanoharan et al. 2024) with an L0 or quadratic-frequency sparsity penalty.

    f_i = z_i * H(z_i - theta_i),   z = W_enc^T (x - b_dec) + b_enc

Sparsity penalties, with omega_i = mean over the batch of H(z_i - theta_i) (computed through the
step STE so the gradient reaches theta only):
    l0:                   lambda * sum_i omega_i                (= lambda * mean L0)
    quadratic-frequency:  lambda * sum_i omega_i (1 + omega_i / omega_0)
The QF term is an L0 penalty whose per-latent coefficient lambda (1 + 2 omega_i / omega_0) grows
with firing frequency, which suppresses latents that fire on a large fraction of tokens.

theta is a raw (not log) fp32 parameter: with log-theta, Adam moves the threshold by ~theta*lr per
step and it barely trains. Bandwidth and theta are in normalised input units (E||x||^2 = 1).
It relies on the trainer's default gradient clipping (`max_grad_norm` 0.01): unclipped, Adam's
second moment remembers the large early threshold gradients, the thresholds stall and lambda
hardly moves L0 (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from saeprobe.sae.auxk import AuxKSettings, add_auxk
from saeprobe.sae.base import LinearEncoderSAE, StepContext, TrainOutput, reconstruction_error
from saeprobe.sae.config import SAEConfig
from saeprobe.sae.registry import register
from saeprobe.sae.sparse_ops import decode, positive_support
from saeprobe.sae.sparse_step import (
    DENSE_FRACTION,
    add_sparse_auxk,
    aux_candidates,
    pre_dense,
    sparse_encoder,
)
from saeprobe.sae.ste import jumprelu_and_step

MIN_THRESHOLD = 1e-6


class JumpReLUConfig(AuxKSettings, SAEConfig):
    architecture: Literal["jumprelu"] = "jumprelu"
    sparsity_coefficient: float = Field(
        0.06, description="lambda; the live range is about 1e-3..1e-1 in normalised units"
    )
    sparsity_penalty: Literal["l0", "quadratic-frequency"] = "l0"
    frequency_scale: float | None = Field(
        None, description="omega_0 of the quadratic-frequency penalty, e.g. 0.1 or 0.01"
    )
    bandwidth: float = Field(0.01, description="width of the rectangle STE kernel")
    threshold_init: float = Field(0.001, description="initial theta for every latent (GDM)")
    threshold_lr_scale: float = Field(
        1.0, gt=0, description="theta's learning rate relative to the weights'"
    )

    @field_validator("sparsity_coefficient")
    @classmethod
    def _lambda_nonnegative(cls, v: float) -> float:
        if not v >= 0:
            raise ValueError(f"sparsity_coefficient must be >= 0 (got {v}); pass a value like 0.01")
        return v

    @field_validator("bandwidth", "threshold_init")
    @classmethod
    def _positive(cls, v: float, info) -> float:
        if not v > 0:
            raise ValueError(f"{info.field_name} must be > 0 (got {v}); pass a value like 0.05")
        return v

    @model_validator(mode="after")
    def _frequency_scale_matches_penalty(self) -> JumpReLUConfig:
        w0 = self.frequency_scale
        if self.sparsity_penalty == "quadratic-frequency":
            if w0 is None:
                raise ValueError(
                    "the quadratic-frequency penalty needs frequency_scale; pass "
                    "--frequency-scale 0.1 (or 0.01)"
                )
            if not w0 > 0:
                raise ValueError(
                    f"frequency_scale must be > 0 (got {w0}); pass --frequency-scale 0.1 (or 0.01)"
                )
        return self


@register
class JumpReLUSAE(LinearEncoderSAE):
    architecture = "jumprelu"
    config_class = JumpReLUConfig
    saelens_architecture = "jumprelu"
    latent_dims = {"W_enc": 1, "W_dec": 0, "b_enc": 0, "threshold": 0}
    cfg: JumpReLUConfig

    def create_extra_parameters(self) -> None:
        super().create_extra_parameters()
        self.threshold = nn.Parameter(torch.zeros(self.cfg.d_sae, dtype=torch.float32))

    def reset_extra_parameters(self) -> None:
        super().reset_extra_parameters()
        self.threshold.fill_(self.cfg.threshold_init)

    def encode(self, x: Tensor) -> Tensor:
        z = self.pre_activation(x)
        return z * (z > self.threshold)

    # Train with the sparse step (sparse_ops); False selects the dense reference step.
    sparse_training: bool = True

    def training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        if self.sparse_training and x.ndim == 2:
            out = self._sparse_training_step(x, ctx)
            if out is not None:
                return out
        return self.dense_training_step(x, ctx)

    def dense_training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        eps = self.cfg.bandwidth
        z = self.pre_activation(x)
        f, fired = jumprelu_and_step(z, self.threshold, eps)
        x_hat = self.decode(f)
        mse, sq_error = reconstruction_error(x, x_hat)
        loss, terms = self._penalised(mse, fired.mean(0), ctx)
        # Dead JumpReLU latents get no gradient at all; AuxK gives them one (see docs/toy.md).
        loss = add_auxk(self, loss, terms, z, x - x_hat, ctx)
        return TrainOutput(
            loss=loss, fire_counts=fired.detach().sum(0), sq_error=sq_error, terms=terms
        )

    def _sparse_training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput | None:
        """The step on the positions with z > theta - eps/2: the active latents and the STE
        window below theta. None when too many latents are active for it to pay (early in
        training, when thresholds are still near 0)."""
        eps, m = self.cfg.bandwidth, self.cfg.d_sae
        low = self.threshold.detach() - eps / 2
        u = pre_dense(self, x, self.b_enc.detach() - low)  # z - low
        support, u_vals = positive_support(u)
        if support.nnz > DENSE_FRACTION * x.shape[0] * m:
            return None
        aux = aux_candidates(self, u, ctx, offset=low)
        z, aux_pre = sparse_encoder(self, x, support, u_vals.float() + low[support.cols], aux)
        # Inactive positions in the window carry f = 0 but still pass dL/df to theta.
        f, fired = jumprelu_and_step(z, self.threshold[support.cols], eps)
        x_hat = decode(f, support, self.W_dec) + self.b_dec
        mse, sq_error = reconstruction_error(x, x_hat)
        omega = fired.new_zeros(m).index_add(0, support.cols, fired) / x.shape[0]
        loss, terms = self._penalised(mse, omega, ctx)
        loss = add_sparse_auxk(self, loss, terms, aux, aux_pre, x - x_hat)
        counts = fired.new_zeros(m).index_add_(0, support.cols, fired.detach())
        return TrainOutput(loss=loss, fire_counts=counts, sq_error=sq_error, terms=terms)

    def _penalised(self, mse: Tensor, omega: Tensor, ctx: StepContext) -> tuple[Tensor, dict]:
        """mse + the sparsity penalty on the firing frequencies `omega` [d_sae]."""
        l0 = omega.sum()
        if self.cfg.sparsity_penalty == "l0":
            sparsity = l0
        else:
            sparsity = (omega * (1 + omega / self.cfg.frequency_scale)).sum()
        loss = mse + ctx.sparsity_scale * self.cfg.sparsity_coefficient * sparsity
        terms = {"mse": mse.detach(), "l0": l0.detach(), "sparsity": sparsity.detach()}
        return loss, terms

    def optimizer_groups(self) -> list[dict]:
        weights = [p for name, p in self.named_parameters() if name != "threshold"]
        return [
            {"params": weights, "lr_scale": 1.0},
            {"params": [self.threshold], "lr_scale": self.cfg.threshold_lr_scale},
        ]

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        self.threshold.clamp_(min=MIN_THRESHOLD)

    def _scale_extra_latent_params(self, factor: Tensor) -> None:
        super()._scale_extra_latent_params(factor)
        self.threshold.mul_(factor)
