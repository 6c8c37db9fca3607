"""TopK SAE (Gao et al. 2024): keep the k largest pre-activations per row, with the AuxK loss."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor

from saeprobe.sae.auxk import AuxKSettings, add_auxk
from saeprobe.sae.base import SAE, LinearEncoderSAE, StepContext, TrainOutput, reconstruction_error
from saeprobe.sae.config import SAEConfig
from saeprobe.sae.registry import register
from saeprobe.sae.sparse_ops import Support, row_topk
from saeprobe.sae.sparse_step import finish_sparse_topk_step, pre_dense, use_sparse


class TopKConfig(AuxKSettings, SAEConfig):
    architecture: Literal["topk"] = "topk"
    k: int = Field(32, description="active latents per row")

    @model_validator(mode="after")
    def _k_fits(self):
        if not self.k > 0:
            raise ValueError(f"k must be > 0 (got {self.k}); pass --k 32 or similar")
        if self.k > self.d_sae:
            raise ValueError(f"k={self.k} exceeds d_sae={self.d_sae}; lower --k or raise --d-sae")
        return self


def scatter_latents(pre: Tensor, vals: Tensor, idx: Tensor) -> Tensor:
    return torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))


@register
class TopKSAE(LinearEncoderSAE):
    """Exact under `scale_latents` only for a uniform factor: a per-latent factor changes which
    latents are in the top k."""

    architecture = "topk"
    config_class = TopKConfig
    saelens_architecture = "topk"
    cfg: TopKConfig
    # Train with the sparse step (sparse_ops); False selects the dense reference step.
    sparse_training: bool = True

    def encode(self, x: Tensor) -> Tensor:
        z = self.pre_activation(x)
        vals, idx = z.topk(self.cfg.k, dim=-1)
        return scatter_latents(z, vals, idx)

    def training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        if use_sparse(self, x, self.cfg.k):
            z = pre_dense(self, x)
            vals, idx = row_topk(z, self.cfg.k)
            return finish_sparse_topk_step(
                self, x, z, Support.fixed(idx, self.cfg.d_sae), vals.reshape(-1), ctx
            )
        return self.dense_training_step(x, ctx)

    def dense_training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        z = self.pre_activation(x)
        vals, idx = z.topk(self.cfg.k, dim=-1)
        f = scatter_latents(z, vals, idx)
        x_hat = self.decode(f)
        return finish_topk_step(self, x, z, f, x_hat, ctx)


def finish_topk_step(
    sae: SAE, x: Tensor, z: Tensor, f: Tensor, x_hat: Tensor, ctx: StepContext
) -> TrainOutput:
    """Reconstruction + AuxK loss shared by TopK and BatchTopK."""
    mse, sq_error = reconstruction_error(x, x_hat)
    loss = mse
    terms = {"mse": mse.detach()}
    loss = add_auxk(sae, loss, terms, z, x - x_hat, ctx)
    return TrainOutput(loss=loss, fire_counts=(f > 0).sum(0), sq_error=sq_error, terms=terms)
