"""Ragged per-token features: one matrix of token rows for many prompts, plus offsets.

Prompt i owns rows `offsets[i]:offsets[i + 1]` of `values`, in sequence order (the order the
tokens had in the prompt), so sequence-aware aggregations (EMA, rolling windows) read them as
the model saw them. Values are kept as stored (fp16 on disk and in memory) and converted to
float32 only in the blocks a probe reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from saeprobe.errors import DataError

__all__ = ["TokenFeatures", "TokenBatch", "batch_rows"]


@dataclass(frozen=True)
class TokenFeatures:
    """`values` [n_tokens, d] of n prompts; `offsets` [n + 1] int64, from 0 to n_tokens."""

    values: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        values, offsets = np.asarray(self.values), np.asarray(self.offsets)
        if values.ndim != 2:
            raise DataError(f"per-token values must be [n_tokens, d], got shape {values.shape}")
        if (
            offsets.ndim != 1
            or offsets.size < 2
            or offsets[0] != 0
            or offsets[-1] != values.shape[0]
            or (np.diff(offsets) < 1).any()
        ):
            raise DataError(
                "per-token offsets must rise strictly from 0 to the number of token rows "
                f"({values.shape[0]}), one step per prompt; rebuild them from the prompt lengths"
            )

    @property
    def n_prompts(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def width(self) -> int:
        return int(self.values.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, prompts: Sequence[int] | np.ndarray) -> TokenFeatures:
        """The rows of these prompts, in the given order (a copy)."""
        prompts = np.asarray(prompts, dtype=np.int64)
        lengths = self.lengths[prompts]
        rows = _row_index(self.offsets[prompts], lengths)
        return TokenFeatures(self.values[rows], np.concatenate([[0], np.cumsum(lengths)]))

    def columns(self, cols: Sequence[int] | np.ndarray) -> TokenFeatures:
        return TokenFeatures(self.values[:, np.asarray(cols)], self.offsets)

    def check_finite(self, what: str) -> None:
        if not np.isfinite(self.values).all():
            raise DataError(f"{what} has NaN/inf per-token values; re-extract the features")


def _row_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ranges starts[i] .. starts[i] + lengths[i] (vectorised)."""
    total = int(lengths.sum())
    within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + within


@dataclass(frozen=True)
class TokenBatch:
    """A contiguous range of prompts laid out for a torch head.

    rows: the slice of token rows they own; slot: where each row lands in the padded
    [n_prompts * max_len] layout; mask: [n_prompts, max_len] valid positions; lengths [n].
    """

    rows: slice
    slot: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.mask.shape)  # type: ignore[return-value]


def batch_rows(tokens: TokenFeatures, start: int, stop: int) -> TokenBatch:
    """The layout of prompts start..stop-1, padded to their longest."""
    lengths = tokens.lengths[start:stop]
    width = int(lengths.max())
    local = np.repeat(np.arange(lengths.size), lengths)
    position = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    mask = np.arange(width)[None, :] < lengths[:, None]
    return TokenBatch(
        rows=slice(int(tokens.offsets[start]), int(tokens.offsets[stop])),
        slot=torch.from_numpy(local * width + position),
        mask=torch.from_numpy(mask),
        lengths=torch.from_numpy(lengths.astype(np.int64)),
    )
