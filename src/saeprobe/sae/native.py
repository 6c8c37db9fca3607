"""Selection kernels used by the sparse training steps, with a plain-torch implementation.

`row_topk` is the only dense, non-matmul pass over the [batch, d_sae] pre-activations that a
sparse TopK step makes.
"""

from __future__ import annotations

from torch import Tensor


def row_topk(z: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k largest entries of each row of a 2-D tensor, in no particular order."""
    return z.topk(k, dim=-1, sorted=False)
