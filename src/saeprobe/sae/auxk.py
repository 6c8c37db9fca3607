"""AuxK dead-latent loss (Gao et al. 2024): dead latents learn to predict the residual.

    e = x - x_hat (detached),   e_hat = W_dec^T TopK_{k_aux}(z restricted to dead latents)
    L_aux = ||e - e_hat||^2 / ||e||^2

Dividing by ||e||^2 makes the term scale-free, so one coefficient (1/32) works at any FVU.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from pydantic import BaseModel, Field
from torch import Tensor

# Gao et al.'s alpha, the default where AuxK is on.
AUXK_COEFFICIENT = 1 / 32


class AuxKSettings(BaseModel):
    """AuxK fields shared by the architectures that use it (mixed into their configs)."""

    aux_coefficient: float = Field(
        AUXK_COEFFICIENT, ge=0, description="alpha on the AuxK loss; 0 disables"
    )
    aux_k: int | None = Field(None, ge=1, description="latents used by AuxK; default d_in // 2")

    @property
    def effective_aux_k(self) -> int:
        return self.aux_k if self.aux_k is not None else max(1, self.d_in // 2)


def auxk_loss(
    pre: Tensor, residual: Tensor, W_dec: Tensor, dead_mask: Tensor | None, k_aux: int
) -> Tensor | None:
    """Normalised AuxK loss, or None when no latent is dead."""
    if dead_mask is None:
        return None
    n_dead = int(dead_mask.sum())
    if n_dead == 0:
        return None
    k = min(k_aux, n_dead)
    dead_pre = pre.masked_fill(~dead_mask, float("-inf"))
    vals, idx = dead_pre.topk(k, dim=-1)
    aux_latents = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
    return normalised_auxk(residual, aux_latents @ W_dec)


def normalised_auxk(residual: Tensor, e_hat: Tensor) -> Tensor:
    e = residual.detach().float()
    scale = e.pow(2).sum(-1).mean()
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        # Data-parallel training: the whole batch's ||e||^2, so that the ranks' averaged
        # gradients are those of the single-process loss.
        dist.all_reduce(scale)
        scale = scale / dist.get_world_size()
    return (e - e_hat.float()).pow(2).sum(-1).mean() / scale.clamp_min(1e-12)


def auxk_count(sae, ctx) -> int:
    """How many dead latents per row AuxK uses this step (0: the term does not apply)."""
    if sae.cfg.aux_coefficient == 0 or ctx.dead_mask is None:
        return 0
    return min(sae.cfg.effective_aux_k, int(ctx.dead_mask.sum()))


def add_auxk_term(sae, loss: Tensor, terms: dict, aux: Tensor) -> Tensor:
    terms["auxk"] = aux.detach()
    return loss + sae.cfg.aux_coefficient * aux


def add_auxk(sae, loss: Tensor, terms: dict, pre: Tensor, residual: Tensor, ctx) -> Tensor:
    """`loss` plus the weighted AuxK term of `sae.cfg` (logged in `terms`), when it applies."""
    if sae.cfg.aux_coefficient == 0:
        return loss
    aux = auxk_loss(pre, residual, sae.W_dec, ctx.dead_mask, sae.cfg.effective_aux_k)
    if aux is None:
        return loss
    return add_auxk_term(sae, loss, terms, aux)


def auxk_settings(on: bool | None, given: dict) -> dict:
    """The aux_coefficient an AuxK on/off switch means, given the other SAE settings `given`:
    off is 0, on keeps a positive coefficient already given or else uses 1/32 (also for
    ReLU and Gated, whose default is off). None leaves the settings alone."""
    if on is None:
        return {}
    if not on:
        return {"aux_coefficient": 0.0}
    if float(given.get("aux_coefficient") or 0) > 0:
        return {}
    return {"aux_coefficient": AUXK_COEFFICIENT}


def uses_auxk(config: dict) -> bool:
    """Whether an SAE with this (saved) config trained with the AuxK loss."""
    return float(config.get("aux_coefficient") or 0) > 0
