"""Activation streams the trainer reads.

A source is deterministic and addressable by step: `batches(start)` yields batch `start`,
`start + 1`, ... and always the same tensors for the same step. That is what makes resume exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from saeprobe.errors import DataError


@runtime_checkable
class BatchSource(Protocol):
    @property
    def d_in(self) -> int: ...

    def batches(self, start: int = 0) -> Iterator[Tensor]: ...


class TensorSource:
    """Seeded, shuffled mini-batches from an in-memory [n, d_in] tensor, epoch after epoch."""

    def __init__(self, data: Tensor, batch_size: int, seed: int = 0):
        if data.ndim != 2:
            raise DataError(f"activations must be [n, d_in], got shape {tuple(data.shape)}")
        if data.shape[0] < batch_size:
            raise DataError(
                f"{data.shape[0]} rows is fewer than batch_size={batch_size}; lower --batch-size"
            )
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self._per_epoch = data.shape[0] // batch_size

    @property
    def d_in(self) -> int:
        return self.data.shape[1]

    def _perm(self, epoch: int) -> Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.data.shape[0], generator=gen)

    def batches(self, start: int = 0) -> Iterator[Tensor]:
        step = start
        while True:
            epoch, i = divmod(step, self._per_epoch)
            perm = self._perm(epoch)
            while i < self._per_epoch:
                yield self.data[perm[i * self.batch_size : (i + 1) * self.batch_size]]
                i += 1
                step += 1
