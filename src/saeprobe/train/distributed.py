"""Data-parallel training under torchrun: what the trainer shares between ranks.

Every rank holds a full copy of every SAE and trains on its own slice of each global batch
(`shard`). After each backward the gradients are averaged over the ranks, together with the
per-latent fire counts (summed), in one all-reduce per SAE that runs while the next SAE computes
its step. So every rank applies the same Adam update to the same weights, renormalises the same
decoder, clamps the same thresholds and marks the same latents dead: the ranks never drift apart
and need no parameter broadcast after the start. Rank 0 writes checkpoints, logs and outputs.

With one process (no torchrun) every function here is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import Tensor

from saeprobe.activations import distributed as ranks
from saeprobe.errors import ConfigError


def world() -> tuple[int, int]:
    """(rank, world size), creating the process group under torchrun."""
    return ranks.setup()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class RankSlice:
    """Rank `rank`'s contiguous slice of each global batch of `source`.

    A store source reads only this rank's rows; any other source yields the global batch and
    is sliced.
    """

    def __init__(self, source, rank: int, world_size: int, batch_size: int):
        if batch_size % world_size:
            raise ConfigError(
                f"batch_size {batch_size} does not split evenly over {world_size} processes; "
                f"use a multiple of {world_size}"
            )
        self.source, self.rank, self.world = source, rank, world_size
        self.part = batch_size // world_size

    @property
    def d_in(self) -> int:
        return self.source.d_in

    @property
    def normalization_scale(self):
        return getattr(self.source, "normalization_scale", None)

    def batches(self, start: int = 0) -> Iterator[Tensor]:
        lo, hi = self.rank * self.part, (self.rank + 1) * self.part
        if hasattr(self.source, "rows") and hasattr(self.source, "store"):
            step = start
            while True:
                rows = self.source.rows(step)[lo:hi]
                yield self.source.store.activations(rows, self.source.layer)
                step += 1
        for batch in self.source.batches(start):
            yield batch[lo:hi]


def shard(source):
    """`source` as this rank sees it: itself with one process, its slice under torchrun."""
    if not active():
        return source
    batch_size = getattr(source, "batch_size", None) or next(source.batches(0)).shape[0]
    return RankSlice(source, dist.get_rank(), dist.get_world_size(), batch_size)


def global_sum(values: Tensor) -> Tensor:
    """Sum of `values` over the ranks (float64 for exact sums of statistics)."""
    if active():
        values = values.clone()
        dist.all_reduce(values)
    return values


def broadcast_module(module: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers (after initialisation)."""
    if not active():
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


class GradSync:
    """An in-flight average of one SAE's gradients and sum of its fire counts over the ranks."""

    def __init__(self, params: list[Tensor], fire_counts: Tensor, loss: Tensor):
        self.fire_counts, self.loss, self.handle = fire_counts, loss.detach(), None
        if not active():
            return
        self.params = [p for p in params if p.grad is not None]
        parts = [p.grad.reshape(-1).float() for p in self.params]
        extra = [fire_counts.reshape(-1).float(), self.loss.reshape(1).float()]
        self.flat = torch.cat([*parts, *extra])
        self.handle = dist.all_reduce(self.flat, async_op=True)

    def wait(self) -> tuple[Tensor, Tensor]:
        """Write the averaged gradients back; return (summed fire counts, mean loss)."""
        if self.handle is None:
            return self.fire_counts, self.loss
        self.handle.wait()
        n = dist.get_world_size()
        offset = 0
        for p in self.params:
            size = p.grad.numel()
            p.grad.copy_(self.flat[offset : offset + size].view_as(p.grad) / n)
            offset += size
        counts = self.flat[offset : offset + self.fire_counts.numel()]
        counts = counts.round().to(self.fire_counts.dtype).view_as(self.fire_counts)
        return counts, self.flat[-1] / n


def is_main() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def barrier() -> None:
    ranks.barrier()
