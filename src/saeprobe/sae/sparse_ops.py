"""Sparse training kernels for the architectures whose latents are mostly zero.

A dense SAE step costs five [batch, d_sae] x d_in matmuls plus element-wise work over
[batch, d_sae] matrices. Once the active latents are known, only the encoder forward has to be
dense (it decides which latents are active). Everything after it touches the active positions
only, and stays exact:

- the decoder gathers the decoder rows of the active latents (`decode`, an embedding-bag);
- its backward gives the latents' gradients at those positions and the decoder-weight gradient
  of the rows they use;
- the encoder backward (`SparsePre`) writes the encoder-weight and bias gradients of the active
  positions only. Every other pre-activation gets a zero gradient in the dense step too: TopK and
  BatchTopK pass no gradient to unselected latents, JumpReLU passes the reconstruction gradient
  through active latents only, and its STE touches only the thresholds.

A `Support` holds the positions (row, col) a step uses. Selection (`row_topk`, `batch_topk`,
`positive_support`, `dead_topk`) runs on the dense pre-activations without autograd.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor

from saeprobe.sae import native

# The encoder-weight gradient below multiplies a sparse [d_sae, batch] matrix by a dense one;
# torch warns once per process that CSR tensors are a beta feature.
_CSR_WARNING = "Sparse CSR tensor support is in beta state"


@dataclass
class Support:
    """Positions of the latents a step uses. For `decode` the rows must be non-decreasing."""

    rows: Tensor  # int64 [nnz]
    cols: Tensor  # int64 [nnz]
    n_rows: int

    @property
    def nnz(self) -> int:
        return self.rows.numel()

    @cached_property
    def offsets(self) -> Tensor:
        """Where each row's positions start (embedding-bag offsets, rows sorted)."""
        wanted = torch.arange(self.n_rows, device=self.rows.device)
        return torch.searchsorted(self.rows, wanted)

    @staticmethod
    def fixed(idx: Tensor) -> Support:
        """The support of `idx` [rows, k]: k positions in every row."""
        n, k = idx.shape
        rows = torch.arange(n, device=idx.device).repeat_interleave(k)
        support = Support(rows, idx.reshape(-1), n)
        support.__dict__["offsets"] = torch.arange(0, n * k, k, device=idx.device)
        return support


# ----- selection (no autograd) -------------------------------------------------------------------
@torch.no_grad()
def dense_pre(x_c: Tensor, W_enc: Tensor, bias: Tensor) -> Tensor:
    """bias + x_c @ W_enc, the one dense matmul of a sparse step (bf16 under autocast)."""
    return torch.addmm(bias, x_c, W_enc)


@torch.no_grad()
def row_topk(z: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k largest entries of each row (any order): values and column indices."""
    return native.row_topk(z, k)


@torch.no_grad()
def dead_topk(
    z: Tensor, dead_mask: Tensor, k: int, offset: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Per row, the k largest entries of `z` (+ `offset`) among the dead columns.

    Gathers the dead columns first, so the cost scales with the number of dead latents rather
    than d_sae (the dense AuxK masks and top-ks the whole matrix).
    """
    dead = dead_mask.nonzero().squeeze(1)
    zd = z.index_select(1, dead)
    if offset is not None:
        zd = zd.float() + offset[dead]
    vals, j = zd.topk(min(k, dead.numel()), dim=-1, sorted=False)
    return vals, dead[j]


@torch.no_grad()
def positive_support(u: Tensor, group: int = 16) -> tuple[Support, Tensor]:
    """The positions where `u` > 0, row-major, and the values of `u` there.

    Columns are split into `group`-sized strided groups {g, g + G, g + 2G, ...}; a group whose
    maximum is not positive holds no position, so only the groups that do are gathered. One
    vectorised max over the matrix replaces a dense compare-and-compact.
    """
    n, m = u.shape
    if m % group or m < 4 * group:
        rows, cols = (u > 0).nonzero(as_tuple=True)
        return Support(rows, cols, n), u[rows, cols]
    G = m // group
    gmax = u.view(n, group, G).amax(1)
    b, g = (gmax > 0).nonzero(as_tuple=True)
    cols = g[:, None] + G * torch.arange(group, device=u.device)
    vals = u[b[:, None], cols]
    keep = vals > 0
    rows = b[:, None].expand_as(cols)[keep]
    return Support(rows, cols[keep], n), vals[keep]


@torch.no_grad()
def batch_topk(z: Tensor, total: int) -> tuple[Support, Tensor]:
    """The `total` largest positive entries of the whole matrix, row-major, and their values.

    Exact: every row contributes at most its `cap` largest entries, so a global top-`total` over
    the rows' candidates is the global top-`total` unless some row had all its candidates
    selected (then it might have more); `cap` doubles until no row is saturated.
    """
    n, m = z.shape
    total = min(total, n * m)
    cap = min(m, max(8, 4 * math.ceil(total / n)))
    while True:
        vals, idx = row_topk(z, cap)
        flat = vals.float().reshape(-1)
        tau = torch.kthvalue(flat, flat.numel() - total + 1).values
        keep = flat > tau
        # Ties at tau: keep just enough of them (the dense top-k breaks ties arbitrarily too).
        ties = flat == tau
        keep |= ties & (ties.cumsum(0) <= total - keep.sum())
        keep = keep.view(n, cap)
        if cap == m or not bool(keep.all(dim=1).any()):
            break
        cap = min(m, 2 * cap)
    keep &= vals > 0  # relu: zeros select nothing
    rows, slot = keep.nonzero(as_tuple=True)
    return Support(rows, idx[rows, slot], n), vals[rows, slot]


# ----- autograd ------------------------------------------------------------------------------------
class SparsePre(torch.autograd.Function):
    """Pre-activations at the support, with a backward that touches only the support.

    Forward takes the values already computed by `dense_pre` (no second matmul). Backward:
        dW_enc[:, j] = sum_{n: col_n = j} g_n x_c[row_n]     db_enc[j] = sum_{n: col_n = j} g_n
        db_dec = -W_enc @ db_enc    (x_c = x - b_dec; the sum over rows of dL/dx_c)
    """

    @staticmethod
    def forward(ctx, values, x, b_dec, W_enc, b_enc, rows, cols):
        ctx.save_for_backward(x, b_dec, W_enc, rows, cols)
        return values.detach().float().clone()

    @staticmethod
    def backward(ctx, grad):
        x, b_dec, W_enc, rows, cols = ctx.saved_tensors
        g = grad.float()
        m = W_enc.shape[1]
        grad_b_enc = g.new_zeros(m).index_add_(0, cols, g)
        grad_x = grad_b_dec = grad_W = None
        if ctx.needs_input_grad[3]:
            x_c = x.float() - b_dec.float() if b_dec is not None else x.float()
            grad_W = scatter_rows(cols, rows, g, x_c, m).t().contiguous().to(W_enc.dtype)
        if ctx.needs_input_grad[1]:  # not needed when training an SAE; kept for completeness
            contrib = g[:, None] * W_enc.t().float()[cols]
            grad_x = torch.zeros_like(x, dtype=torch.float32).index_add_(0, rows, contrib)
            grad_x = grad_x.to(x.dtype)
        if b_dec is not None and ctx.needs_input_grad[2]:
            grad_b_dec = -(W_enc.float() @ grad_b_enc).to(b_dec.dtype)
        grad_b_enc = grad_b_enc.to(W_enc.dtype) if ctx.needs_input_grad[4] else None
        return None, grad_x, grad_b_dec, grad_W, grad_b_enc, None, None


def sparse_pre(
    values: Tensor, x: Tensor, b_dec: Tensor | None, W_enc: Tensor, b_enc: Tensor, rows, cols
) -> Tensor:
    """float32 pre-activations `values` at (rows, cols), differentiable w.r.t. the encoder."""
    return SparsePre.apply(values, x, b_dec, W_enc, b_enc, rows, cols)


def scatter_rows(cols: Tensor, rows: Tensor, weights: Tensor, X: Tensor, m: int) -> Tensor:
    """out[j] = sum over n with cols[n] = j of weights[n] * X[rows[n]]; out is [m, X.shape[1]].

    A sparse [m, n_rows] CSR matrix times X (MKL's sparse-dense product on CPU), built by
    sorting the positions by column.
    """
    order = torch.argsort(cols * X.shape[0] + rows)
    counts = torch.bincount(cols, minlength=m)
    crow = torch.zeros(m + 1, dtype=torch.int64, device=cols.device)
    torch.cumsum(counts, 0, out=crow[1:])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CSR_WARNING)
        csr = torch.sparse_csr_tensor(
            crow,
            rows[order],
            weights[order].to(X.dtype),
            (m, X.shape[0]),
            device=X.device,
            check_invariants=False,  # built sorted and in range just above
        )
    return csr @ X


def decode(values: Tensor, support: Support, W_dec: Tensor) -> Tensor:
    """sum over the support of values[n] * W_dec[cols[n]] per row, in W_dec's dtype (no bias)."""
    with torch.autocast(W_dec.device.type, enabled=False):
        return F.embedding_bag(
            support.cols,
            W_dec,
            support.offsets,
            mode="sum",
            per_sample_weights=values.to(W_dec.dtype),
        )


def fire_counts(cols: Tensor, active: Tensor, m: int) -> Tensor:
    """Per latent, the number of positions at which it is active (int64 [m])."""
    return torch.bincount(cols[active], minlength=m)
