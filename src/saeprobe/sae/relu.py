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

    def training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        z = self.pre_activation(x)
        f = torch.relu(z)
        x_hat = self.decode(f)
        mse, sq_error = reconstruction_error(x, x_hat)
        l1 = (f.float() * self.W_dec.norm(dim=1)).sum(-1).mean()
        loss = mse + ctx.sparsity_scale * self.cfg.l1_coefficient * l1
        terms = {"mse": mse.detach(), "l1": l1.detach()}
        loss = add_auxk(self, loss, terms, z, x - x_hat, ctx)
        return TrainOutput(loss=loss, fire_counts=(f > 0).sum(0), sq_error=sq_error, terms=terms)
