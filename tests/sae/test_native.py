"""The compiled row top-k selects what torch.topk selects."""

import pytest
import torch

from saeprobe.sae import native

pytestmark = pytest.mark.skipif(not native.available(), reason="no C compiler for the kernel")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("rows", "n", "k"), [(300, 1000, 32), (7, 37, 1), (5, 16, 16), (130, 77, 9)]
)
def test_native_topk_matches_torch(dtype, rows, n, k):
    z = (torch.randn(rows, n) * 3).to(dtype)
    vals, idx = native.row_topk(z, k)
    ref_vals, ref_idx = z.topk(k, dim=-1)
    assert vals.dtype == dtype and idx.dtype == torch.int64
    assert torch.equal(vals.sort(-1).values, ref_vals.sort(-1).values)
    assert torch.equal(z.gather(1, idx), vals)  # indices point at the values returned
    if dtype == torch.float32:  # bf16 has ties, and ties may pick other equal entries
        assert torch.equal(idx.sort(-1).values, ref_idx.sort(-1).values)


def test_native_topk_reads_strided_rows():
    z = torch.randn(64, 200)[:, 10:150]  # not contiguous
    vals, _ = native.row_topk(z, 5)
    assert torch.equal(vals.sort(-1).values, z.topk(5, dim=-1).values.sort(-1).values)
