"""Sparse training kernels for the architectures whose latents are mostly zero.

A dense SAE step costs five [batch, d_sae] x d_in matmuls plus element-wise work over
[batch, d_sae] matrices. Once the active latents are known, only the encoder forward has to be
dense (it decides which latents are active). Everything after it touches the active positions
only, and stays exact:

- `decode` gathers the decoder rows of the active latents (an embedding-bag); its backward gives
  the latents' gradients at those positions (a sampled matmul) and the decoder-weight gradient
  of the rows they use (a sparse-transposed matmul);
- the encoder backward (`SparsePre`) writes the encoder-weight and bias gradients of the active
  positions only. Every other pre-activation gets a zero gradient in the dense step too: TopK and
  BatchTopK pass no gradient to unselected latents, JumpReLU passes the reconstruction gradient
  through active latents only, and its STE touches only the thresholds.

AuxK reads k_aux ~ d_in / 2 latents per row among the dead ones: with few dead latents that is a
dense block (the dead columns), handled as one, with matmuls over the dead columns only.

A `Support` holds the positions (row, col) a step uses. Selection (`row_topk`, `batch_topk`,
`positive_support`) runs on the dense pre-activations without autograd.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from saeprobe.sae import native

# torch warns once per process that CSR tensors are a beta feature.
_CSR_WARNING = "Sparse CSR tensor support is in beta state"


@dataclass
class Support:
    """Positions of the latents a step uses, row-major (rows non-decreasing)."""

    rows: Tensor  # int64 [nnz]
    cols: Tensor  # int64 [nnz]
    n_rows: int
    n_cols: int  # d_sae

    @property
    def nnz(self) -> int:
        return self.rows.numel()

    @cached_property
    def offsets(self) -> Tensor:
        """Where each row's positions start (embedding-bag offsets)."""
        wanted = torch.arange(self.n_rows, device=self.rows.device)
        return torch.searchsorted(self.rows, wanted)

    @cached_property
    def row_ptr(self) -> Tensor:
        return torch.cat([self.offsets, self.offsets.new_tensor([self.nnz])])

    @cached_property
    def by_col(self) -> tuple[Tensor, Tensor, Tensor]:
        """(order, col_ptr, rows[order]): the positions sorted by column, i.e. the CSR layout of
        the transposed [d_sae, rows] matrix; shared by the encoder and decoder gradients."""
        order = torch.argsort(self.cols * self.n_rows + self.rows)
        counts = torch.bincount(self.cols, minlength=self.n_cols)
        ptr = torch.zeros(self.n_cols + 1, dtype=torch.int64, device=self.cols.device)
        torch.cumsum(counts, 0, out=ptr[1:])
        return order, ptr, self.rows[order]

    @staticmethod
    def fixed(idx: Tensor, n_cols: int) -> Support:
        """The support of `idx` [rows, k]: k positions in every row."""
        n, k = idx.shape
        rows = torch.arange(n, device=idx.device).repeat_interleave(k)
        support = Support(rows, idx.reshape(-1), n, n_cols)
        support.__dict__["offsets"] = torch.arange(0, n * k, k, device=idx.device)
        return support


def _csr(ptr: Tensor, idx: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CSR_WARNING)
        return torch.sparse_csr_tensor(
            ptr, idx, values, shape, device=values.device, check_invariants=False
        )


def scatter_rows(support: Support, weights: Tensor, X: Tensor) -> Tensor:
    """out[j] = sum over positions n with cols[n] = j of weights[n] * X[rows[n]]: [d_sae, X.shape[1]].

    The sparse [d_sae, rows] matrix of `weights` times X (MKL's sparse-dense product on CPU).
    """
    order, ptr, rows = support.by_col
    csr = _csr(ptr, rows, weights[order].to(X.dtype), (support.n_cols, support.n_rows))
    return csr @ X


def sampled_dots(support: Support, A: Tensor, B: Tensor) -> Tensor:
    """A[rows[n]] . B[cols[n]] for every position n (a sampled A @ B^T)."""
    pattern = _csr(
        support.row_ptr, support.cols, A.new_zeros(support.nnz), (support.n_rows, support.n_cols)
    )
    return torch.sparse.sampled_addmm(pattern, A, B.t()).values()


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
def positive_support(u: Tensor, group: int = 16) -> tuple[Support, Tensor]:
    """The positions where `u` > 0, row-major, and the values of `u` there.

    Columns are split into `group`-sized strided groups {g, g + G, g + 2G, ...}; a group whose
    maximum is not positive holds no position, so only the groups that do are gathered. One
    vectorised max over the matrix replaces a dense compare-and-compact.
    """
    n, m = u.shape
    if m % group or m < 4 * group:
        rows, cols = (u > 0).nonzero(as_tuple=True)
        return Support(rows, cols, n, m), u[rows, cols]
    G = m // group
    b, g = (u.view(n, group, G).amax(1) > 0).nonzero(as_tuple=True)
    flat = (b * m + g)[:, None] + G * torch.arange(group, device=u.device)
    vals = u.view(-1).take(flat).view(-1)
    hit = (vals > 0).nonzero().squeeze(1)
    flat = flat.view(-1)[hit]
    return Support(flat // m, flat % m, n, m), vals[hit]


def _data_parallel() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@torch.no_grad()
def batch_topk(z: Tensor, total: int) -> tuple[Support, Tensor]:
    """The `total` largest positive entries of the whole matrix, row-major, and their values.

    Exact: every row contributes at most its `cap` largest entries, so a global top-`total` over
    the rows' candidates is the global top-`total` unless some row had all its candidates
    selected (then it might have more); `cap` doubles until no row is saturated.

    Under data-parallel training `z` is this rank's slice of the batch and the selection is over
    the whole batch: the ranks share their candidates' values to find one threshold (ties at it
    are all kept), so each rank selects what one process reading the whole batch would.
    """
    n, m = z.shape
    world = dist.get_world_size() if _data_parallel() else 1
    total = min(total, n * m)
    cap = min(m, max(8, 4 * math.ceil(total / n)))
    while True:
        vals, idx = row_topk(z, cap)
        flat = vals.float().reshape(-1)
        if world == 1:
            tau = torch.kthvalue(flat, flat.numel() - total + 1).values
            keep = flat > tau
            # Ties at tau: keep just enough of them (the dense top-k breaks ties arbitrarily).
            ties = flat == tau
            keep |= ties & (ties.cumsum(0) <= total - keep.sum())
        else:
            every = [torch.empty_like(flat) for _ in range(world)]
            dist.all_gather(every, flat)
            pooled = torch.cat(every)
            tau = torch.kthvalue(pooled, pooled.numel() - total * world + 1).values
            keep = flat >= tau
        keep = keep.view(n, cap)
        saturated = torch.tensor(float(cap < m and bool(keep.all(dim=1).any())))
        if world > 1:
            dist.all_reduce(saturated, op=dist.ReduceOp.MAX)
        if not saturated:
            break
        cap = min(m, 2 * cap)
    keep &= vals > 0  # relu: zeros select nothing
    rows, slot = keep.nonzero(as_tuple=True)
    return Support(rows, idx[rows, slot], n, m), vals[rows, slot]


# ----- autograd ------------------------------------------------------------------------------------
class SparsePre(torch.autograd.Function):
    """Pre-activations at a support (and optionally on a dense block of columns), with a
    backward that touches only those positions.

    Forward takes the values already computed by `dense_pre` (no second matmul). Backward, with
    g the gradient at the positions and x_c = x - b_dec:
        dW_enc[:, j] = sum_{n: col_n = j} g_n x_c[row_n]     db_enc[j] = sum_{n: col_n = j} g_n
        db_dec = -W_enc @ db_enc                             (the sum over rows of dL/dx_c)
    and for the block columns C with gradient G [rows, |C|]:  dW_enc[:, C] += x_c^T G.
    """

    @staticmethod
    def forward(ctx, values, block, x, b_dec, W_enc, b_enc, support, block_cols):
        ctx.save_for_backward(x, b_dec, W_enc, block_cols)
        ctx.support = support
        out = values.detach().float().clone()
        if block is None:
            return out
        return out, block.detach().float().clone()

    @staticmethod
    def backward(ctx, grad, grad_block=None):
        x, b_dec, W_enc, block_cols = ctx.saved_tensors
        support = ctx.support
        g = grad.float()
        d, m = W_enc.shape
        x_c = x.float() - b_dec.float() if b_dec is not None else x.float()
        grad_b_enc = g.new_zeros(m).index_add_(0, support.cols, g)
        if grad_block is not None:
            grad_b_enc.index_add_(0, block_cols, grad_block.float().sum(0))
        grad_x = grad_b_dec = grad_W = None
        if ctx.needs_input_grad[4]:
            grad_W = scatter_rows(support, g, x_c).t().contiguous()
            if grad_block is not None:
                grad_W.index_add_(1, block_cols, x_c.t() @ grad_block.float())
            grad_W = grad_W.to(W_enc.dtype)
        if ctx.needs_input_grad[2]:  # not needed when training an SAE; kept for completeness
            Wt = W_enc.t().float()
            grad_x = torch.zeros_like(x_c).index_add_(
                0, support.rows, g[:, None] * Wt[support.cols]
            )
            if grad_block is not None:
                grad_x += grad_block.float() @ Wt[block_cols]
            grad_x = grad_x.to(x.dtype)
        if b_dec is not None and ctx.needs_input_grad[3]:
            grad_b_dec = -(W_enc.float() @ grad_b_enc).to(b_dec.dtype)
        grad_b_enc = grad_b_enc.to(W_enc.dtype) if ctx.needs_input_grad[5] else None
        return None, None, grad_x, grad_b_dec, grad_W, grad_b_enc, None, None


def sparse_pre(values, x, b_dec, W_enc, b_enc, support, block=None, block_cols=None):
    """float32 pre-activations `values` at `support` (and `block` [rows, |block_cols|]),
    differentiable with respect to the encoder parameters."""
    return SparsePre.apply(values, block, x, b_dec, W_enc, b_enc, support, block_cols)


class _SparseDecode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, W_dec, support):
        ctx.save_for_backward(values, W_dec)
        ctx.support = support
        return F.embedding_bag(
            support.cols, W_dec, support.offsets, mode="sum", per_sample_weights=values
        )

    @staticmethod
    def backward(ctx, grad):
        values, W_dec = ctx.saved_tensors
        support = ctx.support
        grad = grad.to(W_dec.dtype).contiguous()
        grad_values = grad_W = None
        if ctx.needs_input_grad[0]:
            grad_values = sampled_dots(support, grad, W_dec).to(values.dtype)
        if ctx.needs_input_grad[1]:
            grad_W = scatter_rows(support, values, grad).to(W_dec.dtype)
        return grad_values, grad_W, None


def decode(values: Tensor, support: Support, W_dec: Tensor) -> Tensor:
    """sum over the support of values[n] * W_dec[cols[n]] per row, in W_dec's dtype (no bias)."""
    with torch.autocast(W_dec.device.type, enabled=False):
        return _SparseDecode.apply(values.to(W_dec.dtype), W_dec, support)


def fire_counts(cols: Tensor, active: Tensor, m: int) -> Tensor:
    """Per latent, the number of positions at which it is active (int64 [m])."""
    return torch.bincount(cols[active], minlength=m)
