"""Per-token activations of the pooled tokens, stored compactly for per-token probes.

For every prompt, the token rows that the poolings read: the user's text, plus any token a
`position` pooling names (e.g. the end-of-turn token). Rows keep their order in the prompt.
They come from the same forward pass as the pooled features (`extract_features(...,
per_token=True)`), so per-token probes cost no second model pass.

- `residual` [n_rows, d_model]: float16 (float32 if some value would overflow float16).
- `offsets` [n_prompts + 1]: prompt i owns rows offsets[i]:offsets[i + 1].
- `positions` [n_rows]: each row's index in the chat-formatted prompt; `is_user` [n_rows].
- `latents[sae]`: the SAE's latents of the same rows, sparse (CSR: only non-zero entries,
  float16 values), so 8 SAEs of 4,608 latents at L0 ~ 32 cost ~ 4 bytes per active latent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from saeprobe.errors import DataError

__all__ = ["SparseLatents", "TokenCache", "compact_float"]

_FP16_MAX = 65000.0


def compact_float(x: np.ndarray) -> np.ndarray:
    """float16 where every value fits, else float32 (massive activations can exceed 65504)."""
    x = np.asarray(x)
    if x.size and float(np.abs(x).max()) >= _FP16_MAX:
        return x.astype(np.float32)
    return x.astype(np.float16)


@dataclass
class SparseLatents:
    """CSR rows of SAE latents: row r holds indices[indptr[r]:indptr[r+1]] and their values."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    d_sae: int

    @property
    def n_rows(self) -> int:
        return int(self.indptr.size - 1)

    @staticmethod
    def from_dense(z: torch.Tensor) -> SparseLatents:
        rows, cols = torch.nonzero(z, as_tuple=True)
        counts = torch.bincount(rows, minlength=z.shape[0])
        indptr = np.concatenate([[0], np.cumsum(counts.numpy())]).astype(np.int64)
        dtype = np.int16 if z.shape[1] <= np.iinfo(np.int16).max else np.int32
        return SparseLatents(
            indptr=indptr,
            indices=cols.numpy().astype(dtype),
            values=compact_float(z[rows, cols].numpy()),
            d_sae=int(z.shape[1]),
        )

    @staticmethod
    def concatenate(parts: Sequence[SparseLatents], d_sae: int) -> SparseLatents:
        counts = [np.diff(p.indptr) for p in parts]
        indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)
        values = np.concatenate([p.values for p in parts])
        return SparseLatents(
            indptr, np.concatenate([p.indices for p in parts]), compact_float(values), d_sae
        )

    def row_of_entry(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_rows), np.diff(self.indptr))

    def columns(self, latents: Sequence[int] | np.ndarray) -> np.ndarray:
        """Dense float32 [n_rows, k] of these latents' per-token values, in the given order."""
        latents = np.asarray(latents, dtype=np.int64)
        slot = np.full(self.d_sae, -1, dtype=np.int64)
        slot[latents] = np.arange(latents.size)
        where = slot[self.indices.astype(np.int64)]
        keep = where >= 0
        out = np.zeros((self.n_rows, latents.size), dtype=np.float32)
        out[self.row_of_entry()[keep], where[keep]] = self.values[keep]
        return out

    def max_pool(self, offsets: np.ndarray, prompts: np.ndarray | None = None) -> np.ndarray:
        """Per prompt, each latent's max over its rows: float32 [n_prompts, d_sae].

        Latents are non-negative (every architecture ends in a ReLU-like gate), so an entry a
        row does not store is 0 and the max starts from 0.
        """
        prompts = np.arange(offsets.size - 1) if prompts is None else np.asarray(prompts)
        prompt_of_row = np.full(self.n_rows, -1, dtype=np.int64)
        for i, p in enumerate(prompts):
            prompt_of_row[offsets[p] : offsets[p + 1]] = i
        entry_prompt = prompt_of_row[self.row_of_entry()]
        keep = entry_prompt >= 0
        out = np.zeros((prompts.size, self.d_sae), dtype=np.float32)
        np.maximum.at(
            out,
            (entry_prompt[keep], self.indices[keep].astype(np.int64)),
            self.values[keep].astype(np.float32),
        )
        return out


@dataclass
class TokenCache:
    """Per-token residuals (and sparse SAE latents) of the pooled tokens of n prompts."""

    residual: np.ndarray
    offsets: np.ndarray
    positions: np.ndarray
    is_user: np.ndarray
    latents: dict[str, SparseLatents] = field(default_factory=dict)

    @property
    def n_prompts(self) -> int:
        return int(self.offsets.size - 1)

    def check(self, n_prompts: int, saes: Sequence[str]) -> None:
        if self.n_prompts != n_prompts:
            raise DataError(
                f"the per-token cache holds {self.n_prompts} prompts, not {n_prompts}; "
                "re-extract features for these prompts"
            )
        missing = [s for s in saes if s not in self.latents]
        if missing:
            raise DataError(
                f"the per-token cache has no latents of SAE(s) {missing}; re-extract features "
                "with those SAEs"
            )
