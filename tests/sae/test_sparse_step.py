"""The sparse training steps give the dense step's loss and gradients (exactness)."""

import pytest
import torch

from saeprobe.sae import StepContext, create_sae
from saeprobe.sae.sparse_ops import (
    Support,
    batch_topk,
    positive_support,
    sampled_dots,
    scatter_rows,
)
from tests.conftest import sae_config

SPARSE = ["topk", "batchtopk", "jumprelu", "jumprelu_qf", "relu", "gated"]


def _sae(variant, d_sae, **kw):
    kw = {"k": 6, **kw} if variant in ("topk", "batchtopk") else kw
    sae = create_sae(sae_config(variant, d_in=16, d_sae=d_sae, **kw), seed=0)
    with torch.no_grad():
        sae.b_dec.normal_(0, 0.1)
        (sae.b_enc if hasattr(sae, "b_enc") else sae.b_gate).normal_(0, 0.05)
    return sae


def _sparse_state(sae, x):
    """A trained-looking state with about 5 % of positions active: JumpReLU thresholds at a
    per-latent quantile of z (some positions fall inside the STE window on either side of
    theta); ReLU and Gated biases lowered to that quantile."""
    with torch.no_grad():
        if sae.architecture == "jumprelu":
            z = sae.pre_activation(x)
            sae.threshold.copy_(z.quantile(0.95, dim=0).clamp_min(1e-3))
        elif sae.architecture == "relu":
            sae.b_enc.sub_(sae.pre_activation(x).quantile(0.95, dim=0))
        elif sae.architecture == "gated":
            sae.r_mag.uniform_(-0.5, 0.5)
            sae.b_mag.normal_(0, 0.05)
            sae.b_gate.sub_(sae._pre_activations(x)[0].quantile(0.95, dim=0))


def _step(sae, x, ctx, sparse):
    sae.sparse_training = sparse
    sae.zero_grad(set_to_none=True)
    out = sae.training_step(x, ctx)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in sae.named_parameters()}
    return out, grads


@pytest.mark.parametrize("variant", SPARSE)
@pytest.mark.parametrize("d_sae", [256, 200])  # 200: no strided groups (not a multiple of 16)
# AuxK on a third of the latents (a dense block of dead columns) or on nearly all of them (sparse
# positions, many of which are also active on this batch, so positions repeat).
@pytest.mark.parametrize("dead", ["none", "block", "sparse"])
@pytest.mark.parametrize("pre_bias", [True, False])
def test_sparse_step_matches_dense(variant, d_sae, dead, pre_bias):
    torch.manual_seed(1)
    kw = {"bandwidth": 0.05} if variant.startswith("jumprelu") else {}
    if variant in ("relu", "gated"):
        kw["aux_coefficient"] = 1 / 32  # off by default for these
    sae = _sae(variant, d_sae, apply_b_dec_to_input=pre_bias, **kw)
    x = torch.randn(64, 16)
    _sparse_state(sae, x)
    if hasattr(sae, "_sparse_training_step"):
        assert sae._sparse_training_step(x, StepContext()) is not None  # not the dense fallback
    mask = None
    if dead != "none":
        mask = torch.zeros(d_sae, dtype=torch.bool)
        mask[::3] = True
        if dead == "sparse":
            mask[4:] = True
    ctx = StepContext(0.7, mask)
    theta0 = sae.threshold.clone() if variant == "batchtopk" else None
    dense, g_dense = _step(sae, x, ctx, sparse=False)
    if theta0 is not None:
        sae.threshold.copy_(theta0)  # both steps update the running threshold once
    sparse, g_sparse = _step(sae, x, ctx, sparse=True)
    assert torch.allclose(sparse.loss, dense.loss, rtol=1e-5, atol=1e-7)
    assert torch.allclose(sparse.sq_error, dense.sq_error, rtol=1e-5)
    assert torch.equal(sparse.fire_counts.long(), dense.fire_counts.long())
    assert sparse.terms.keys() == dense.terms.keys()
    for key in dense.terms:
        assert torch.allclose(sparse.terms[key], dense.terms[key], rtol=1e-5, atol=1e-7), key
    for name, g in g_dense.items():
        assert torch.allclose(g_sparse[name], g, rtol=1e-4, atol=1e-6), name
    if variant.startswith("jumprelu"):
        assert g_dense["threshold"].abs().sum() > 0  # the STE window was exercised


@pytest.mark.parametrize("variant", ["relu", "gated"])
def test_relu_and_gated_stay_dense_while_most_latents_fire(variant):
    sae = _sae(variant, 256)  # at initialisation about half the pre-activations are positive
    assert sae._sparse_training_step(torch.randn(32, 16), StepContext()) is None


def test_jumprelu_falls_back_to_dense_when_most_latents_fire():
    sae = _sae("jumprelu", 256)  # threshold 0.001: about half the latents are active
    x = torch.randn(32, 16)
    assert sae._sparse_training_step(x, StepContext()) is None
    out = sae.training_step(x, StepContext())
    assert float(out.fire_counts.sum()) > 0.3 * 32 * 256


def test_batch_topk_selects_the_global_largest_with_saturated_rows():
    z = torch.randn(16, 128)
    z[3] += 10  # one row holds most of the top entries: the per-row cap must grow
    support, vals = batch_topk(z, 40)
    flat = torch.relu(z).flatten()
    expect = flat.topk(40).indices
    got = support.rows * 128 + support.cols
    assert torch.equal(got.sort().values, expect.sort().values)
    assert torch.equal(vals, z[support.rows, support.cols])
    assert bool((support.rows[1:] >= support.rows[:-1]).all())


def test_positive_support_is_row_major_and_complete():
    u = torch.randn(8, 64) - 1.5
    support, vals = positive_support(u)
    rows, cols = (u > 0).nonzero(as_tuple=True)
    assert torch.equal(
        (support.rows * 64 + support.cols).sort().values, (rows * 64 + cols).sort().values
    )
    assert bool((support.rows[1:] >= support.rows[:-1]).all())
    assert torch.equal(vals, u[support.rows, support.cols])
    assert torch.equal(support.offsets, torch.searchsorted(rows, torch.arange(8)))


def test_scatter_rows_sums_duplicates():
    rows = torch.tensor([0, 0, 1, 2, 2, 2])
    cols = torch.tensor([3, 3, 0, 1, 3, 1])
    w = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    X = torch.randn(3, 5)
    expect = torch.zeros(4, 5).index_add_(0, cols, w[:, None] * X[rows])
    assert torch.allclose(scatter_rows(Support(rows, cols, 3, 4), w, X), expect)


def test_sampled_dots_with_unsorted_columns():
    idx = torch.tensor([[5, 1, 3], [0, 7, 2]])  # top-k order, not sorted within a row
    support = Support.fixed(idx, 8)
    A, B = torch.randn(2, 4), torch.randn(8, 4)
    expect = (A[support.rows] * B[support.cols]).sum(-1)
    assert torch.allclose(sampled_dots(support, A, B), expect, atol=1e-6)


def test_empty_support_decodes_to_zero():
    from saeprobe.sae.sparse_ops import decode

    empty = Support(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 3, 10)
    out = decode(torch.zeros(0), empty, torch.randn(10, 4))
    assert out.shape == (3, 4) and not out.any()
