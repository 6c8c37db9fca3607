"""ReLU SAE with an L1 penalty weighted by decoder norm (Bricken et al. 2023; Conerly et al. 2024)."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from saeprobe.sae.auxk import AuxKSettings, add_auxk
from saeprobe.sae.base import LinearEncoderSAE, StepContext, TrainOutput, reconstruction_error
from saeprobe.sae.config import SAEConfig
from saeprobe.sae.registry import register
from saeprobe.sae.sparse_ops import decode, fire_counts, positive_support
from saeprobe.sae.sparse_step import (
    DENSE_FRACTION,
    add_sparse_auxk,
    aux_candidates,
    pre_dense,
    sparse_encoder,
)


class ReLUConfig(AuxKSettings, SAEConfig):
    architecture: Literal["relu"] = "relu"
    aux_coefficient: float = Field(0.0, ge=0, description="alpha on the AuxK dead-latent loss")
    l1_coefficient: float = Field(
        0.3, ge=0, description="lambda in lambda * sum_i f_i ||d_i|| (normalised input units)"
    )


@register
class ReLUSAE(LinearEncoderSAE):
    architecture = "relu"
    config_class = ReLUConfig
    saelens_architecture = "standard"
    cfg: ReLUConfig

    def encode(self, x: Tensor) -> Tensor:
        return torch.relu(self.pre_activation(x))

    # Train with the sparse step once few latents fire (sparse_ops); False: always dense.
    sparse_training: bool = True

    def training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        if self.sparse_training and x.ndim == 2:
            out = self._sparse_training_step(x, ctx)
            if out is not None:
                return out
        return self.dense_training_step(x, ctx)

    def dense_training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        z = self.pre_activation(x)
        f = torch.relu(z)
        x_hat = self.decode(f)
        mse, sq_error = reconstruction_error(x, x_hat)
        l1 = (f.float() * self.W_dec.norm(dim=1)).sum(-1).mean()
        loss = mse + ctx.sparsity_scale * self.cfg.l1_coefficient * l1
        terms = {"mse": mse.detach(), "l1": l1.detach()}
        loss = add_auxk(self, loss, terms, z, x - x_hat, ctx)
        return TrainOutput(loss=loss, fire_counts=(f > 0).sum(0), sq_error=sq_error, terms=terms)

    def _sparse_training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput | None:
        """The step on the positive pre-activations (exact: ReLU passes nothing elsewhere, and
        the L1 term is zero there). None while too many latents fire for it to pay."""
        z = pre_dense(self, x)
        support, values = positive_support(z)
        if support.nnz > DENSE_FRACTION * x.shape[0] * self.cfg.d_sae:
            return None
        aux = aux_candidates(self, z, ctx)
        pre, aux_pre = sparse_encoder(self, x, support, values, aux)
        f = torch.relu(pre)
        x_hat = decode(f, support, self.W_dec) + self.b_dec
        mse, sq_error = reconstruction_error(x, x_hat)
        l1 = (f * self.W_dec.norm(dim=1)[support.cols]).sum() / x.shape[0]
        loss = mse + ctx.sparsity_scale * self.cfg.l1_coefficient * l1
        terms = {"mse": mse.detach(), "l1": l1.detach()}
        loss = add_sparse_auxk(self, loss, terms, aux, aux_pre, x - x_hat)
        counts = fire_counts(support.cols, f.detach() > 0, self.cfg.d_sae)
        return TrainOutput(loss=loss, fire_counts=counts, sq_error=sq_error, terms=terms)
