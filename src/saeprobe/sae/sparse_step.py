"""Plumbing shared by the sparse training steps of TopK, BatchTopK and JumpReLU.

Each architecture selects its support from the dense pre-activations (no autograd), then calls
`sparse_encoder` for differentiable pre-activations at the support (and at the AuxK candidates),
and decodes with `sparse_ops.decode`. Each keeps its dense step as the reference the tests
compare against; `sae.sparse_training = False` selects it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from saeprobe.sae.auxk import add_auxk_term, auxk_count, normalised_auxk
from saeprobe.sae.base import StepContext, TrainOutput, reconstruction_error
from saeprobe.sae.sparse_ops import Support, decode, dense_pre, fire_counts, row_topk, sparse_pre

# Above this fraction of active positions the dense step is cheaper than gathering.
DENSE_FRACTION = 1 / 8
# AuxK treats the dead columns as one dense block when k_aux is at least this fraction of them.
AUX_BLOCK_DENSITY = 1 / 16


def use_sparse(sae, x: Tensor, mean_active: float) -> bool:
    """Whether the sparse step applies and pays for a batch `x` with `mean_active` per row."""
    return (
        getattr(sae, "sparse_training", False)
        and x.ndim == 2
        and mean_active <= DENSE_FRACTION * sae.cfg.d_sae
    )


def pre_dense(sae, x: Tensor, bias: Tensor | None = None) -> Tensor:
    """The dense pre-activations (b_enc or `bias`) without autograd; bf16 under autocast."""
    with torch.no_grad():
        b = sae.b_enc if bias is None else bias
        return dense_pre(sae.encoder_input(x), sae.W_enc, b)


@dataclass
class AuxCandidates:
    """AuxK's inputs among the dead latents: either the whole dead block (`values` [rows,
    n_dead], top-k taken in the loss) or the top-k positions already chosen (`support`)."""

    k: int
    dead: Tensor  # int64 column ids of the dead latents
    values: Tensor  # [rows, n_dead] or [nnz]
    support: Support | None = None


@torch.no_grad()
def aux_candidates(sae, z: Tensor, ctx: StepContext, offset: Tensor | None = None):
    """The dead latents' pre-activations (`z` + `offset`), or None when AuxK does not apply."""
    k = auxk_count(sae, ctx)
    if not k:
        return None
    dead = ctx.dead_mask.nonzero().squeeze(1)
    zd = z.index_select(1, dead).float()
    if offset is not None:
        zd += offset[dead]
    if k >= AUX_BLOCK_DENSITY * dead.numel():
        return AuxCandidates(k, dead, zd)
    vals, j = zd.topk(k, dim=-1, sorted=False)
    return AuxCandidates(k, dead, vals.reshape(-1), Support.fixed(dead[j], sae.cfg.d_sae))


def sparse_encoder(
    sae, x: Tensor, support: Support, values: Tensor, aux: AuxCandidates | None, bias=None
):
    """float32 pre-activations at `support`, and at the AuxK candidates, whose backward writes
    the encoder gradients (W_enc, b_dec and `bias`, default b_enc) of those positions only."""
    b_dec = sae.b_dec if sae.cfg.apply_b_dec_to_input else None
    args = (x, b_dec, sae.W_enc, sae.b_enc if bias is None else bias)
    if aux is None:
        return sparse_pre(values.float(), *args, support), None
    if aux.support is None:
        pre, block = sparse_pre(values.float(), *args, support, aux.values, aux.dead)
        return pre, block
    both = Support(
        torch.cat([support.rows, aux.support.rows]),
        torch.cat([support.cols, aux.support.cols]),
        support.n_rows,
        support.n_cols,
    )
    pre = sparse_pre(torch.cat([values.float(), aux.values]), *args, both)
    return pre[: support.nnz], pre[support.nnz :]


def add_sparse_auxk(sae, loss: Tensor, terms: dict, aux, aux_pre, residual: Tensor) -> Tensor:
    """`loss` plus the AuxK term from the candidates' pre-activations `aux_pre`."""
    if aux is None:
        return loss
    if aux.support is not None:
        e_hat = decode(torch.relu(aux_pre), aux.support, sae.W_dec)
    else:
        _, j = row_topk(aux_pre.detach(), aux.k)
        latents = torch.zeros_like(aux_pre).scatter(1, j, torch.relu(aux_pre.gather(1, j)))
        e_hat = latents @ sae.W_dec.index_select(0, aux.dead)
    return add_auxk_term(sae, loss, terms, normalised_auxk(residual, e_hat))


def finish_sparse_topk_step(
    sae, x: Tensor, z: Tensor, support: Support, values: Tensor, ctx: StepContext
) -> TrainOutput:
    """Reconstruction + AuxK for TopK and BatchTopK, from the selected support."""
    aux = aux_candidates(sae, z, ctx)
    pre, aux_pre = sparse_encoder(sae, x, support, values, aux)
    f = torch.relu(pre)
    x_hat = decode(f, support, sae.W_dec) + sae.b_dec
    mse, sq_error = reconstruction_error(x, x_hat)
    terms = {"mse": mse.detach()}
    loss = add_sparse_auxk(sae, mse, terms, aux, aux_pre, x - x_hat)
    counts = fire_counts(support.cols, f.detach() > 0, sae.cfg.d_sae)
    return TrainOutput(loss=loss, fire_counts=counts, sq_error=sq_error, terms=terms)
