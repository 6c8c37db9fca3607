"""Plumbing shared by the sparse training steps of TopK, BatchTopK and JumpReLU.

Each architecture selects its support from the dense pre-activations (no autograd), then calls
`sparse_encoder` for differentiable pre-activations at the support (and at the AuxK positions),
and decodes with `sparse_ops.decode`. Each keeps its dense step as the reference the tests compare
against; `sae.sparse_training = False` selects it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from saeprobe.sae.auxk import add_auxk_term, auxk_count, normalised_auxk
from saeprobe.sae.base import StepContext, TrainOutput, reconstruction_error
from saeprobe.sae.sparse_ops import (
    Support,
    dead_topk,
    decode,
    dense_pre,
    fire_counts,
    sparse_pre,
)

# Above this fraction of active positions the dense step is cheaper than gathering.
DENSE_FRACTION = 1 / 8


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


def sparse_encoder(
    sae, x: Tensor, support: Support, values: Tensor, aux: tuple[Tensor, Tensor] | None
) -> tuple[Tensor, Tensor | None, Support | None]:
    """float32 pre-activations at `support` (and at the AuxK positions `aux` = (values, cols),
    each [rows, k_aux]) whose backward writes the encoder gradients of those positions only."""
    b_dec = sae.b_dec if sae.cfg.apply_b_dec_to_input else None
    rows, cols, vals = support.rows, support.cols, values.float()
    aux_support = None
    if aux is not None:
        aux_support = Support.fixed(aux[1])
        rows = torch.cat([rows, aux_support.rows])
        cols = torch.cat([cols, aux_support.cols])
        vals = torch.cat([vals, aux[0].float().reshape(-1)])
    pre = sparse_pre(vals, x, b_dec, sae.W_enc, sae.b_enc, rows, cols)
    if aux is None:
        return pre, None, None
    return pre[: support.nnz], pre[support.nnz :], aux_support


def aux_positions(sae, z: Tensor, ctx: StepContext, offset: Tensor | None = None):
    """AuxK's (values, cols) among the dead latents, or None when the term does not apply."""
    k_aux = auxk_count(sae, ctx)
    if not k_aux:
        return None
    return dead_topk(z, ctx.dead_mask, k_aux, offset)


def add_sparse_auxk(sae, loss: Tensor, terms: dict, aux_pre, aux_support, residual) -> Tensor:
    if aux_pre is None:
        return loss
    e_hat = decode(torch.relu(aux_pre), aux_support, sae.W_dec)
    return add_auxk_term(sae, loss, terms, normalised_auxk(residual, e_hat))


def finish_sparse_topk_step(
    sae, x: Tensor, z: Tensor, support: Support, values: Tensor, ctx: StepContext
) -> TrainOutput:
    """Reconstruction + AuxK for TopK and BatchTopK, from the selected support."""
    aux = aux_positions(sae, z, ctx)
    pre, aux_pre, aux_support = sparse_encoder(sae, x, support, values, aux)
    f = torch.relu(pre)
    x_hat = decode(f, support, sae.W_dec) + sae.b_dec
    mse, sq_error = reconstruction_error(x, x_hat)
    terms = {"mse": mse.detach()}
    loss = add_sparse_auxk(sae, mse, terms, aux_pre, aux_support, x - x_hat)
    counts = fire_counts(support.cols, f.detach() > 0, sae.cfg.d_sae)
    return TrainOutput(loss=loss, fire_counts=counts, sq_error=sq_error, terms=terms)
