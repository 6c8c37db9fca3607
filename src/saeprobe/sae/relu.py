"""ReLU SAE with an L1 penalty weighted by decoder norm (Bricken et al. 2023; Conerly et al. 2024)."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from saeprobe.sae.base import SAE, StepContext, TrainOutput, reconstruction_error
from saeprobe.sae.config import SAEConfig
from saeprobe.sae.registry import register


class ReLUConfig(SAEConfig):
    architecture: Literal["relu"] = "relu"
    l1_coefficient: float = Field(
        0.3, ge=0, description="lambda in lambda * sum_i f_i ||d_i|| (normalised input units)"
    )


@register
class ReLUSAE(SAE):
    architecture = "relu"
    config_class = ReLUConfig
    saelens_architecture = "standard"
    latent_dims = {"W_enc": 1, "W_dec": 0, "b_enc": 0}
    cfg: ReLUConfig

    def create_extra_parameters(self) -> None:
        self.b_enc = nn.Parameter(torch.zeros(self.cfg.d_sae))

    def reset_extra_parameters(self) -> None:
        self.b_enc.zero_()

    def pre_activation(self, x: Tensor) -> Tensor:
        return self.encoder_input(x) @ self.W_enc + self.b_enc

    def encode(self, x: Tensor) -> Tensor:
        return torch.relu(self.pre_activation(x))

    def training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        f = self.encode(x)
        mse, sq_error = reconstruction_error(x, self.decode(f))
        l1 = (f.float() * self.W_dec.norm(dim=1)).sum(-1).mean()
        loss = mse + ctx.sparsity_scale * self.cfg.l1_coefficient * l1
        return TrainOutput(
            loss=loss,
            fire_counts=(f > 0).sum(0),
            sq_error=sq_error,
            terms={"mse": mse.detach(), "l1": l1.detach()},
        )

    def _scale_extra_latent_params(self, factor: Tensor) -> None:
        self.b_enc.mul_(factor)
