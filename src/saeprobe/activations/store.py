"""Read a harvested store: memory-mapped shards, random access, seeded shuffled batches.

Nothing is loaded into RAM up front: shards are `np.load(mmap_mode="r")` views and only the rows
a batch needs are copied. Opening verifies every shard's size and (by default) its sha256.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from saeprobe.activations.manifest import Manifest, load_manifest
from saeprobe.activations.shards import (
    TOKEN_DTYPE,
    from_storage,
    layer_file,
    open_array,
    tokens_file,
)
from saeprobe.errors import DataError
from saeprobe.io_utils import sha256_file


class ActivationStore:
    def __init__(self, path: str | Path, verify: bool = True):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(f"activation store {self.path} not found; run saeprobe harvest first")
        self.manifest: Manifest = load_manifest(self.path)
        if verify:
            self.verify()
        sizes = [s.n_tokens for s in self.manifest.shards]
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._maps: dict[tuple[int, int], np.ndarray] = {}

    # ----- description -----------------------------------------------------------------------
    @property
    def layers(self) -> list[int]:
        return self.manifest.layers

    @property
    def d_model(self) -> int:
        return self.manifest.d_model

    @property
    def n_tokens(self) -> int:
        return self.manifest.n_tokens

    def normalization_scale(self, layer: int) -> float:
        return self.manifest.normalization_scale[str(self.check_layer(layer))]

    def verify(self) -> None:
        """Check every shard file's sha256 against the manifest."""
        for shard in self.manifest.shards:
            for rel, digest in shard.files.items():
                path = self.path / rel
                if not path.is_file():
                    raise DataError(
                        f"shard {path} is missing; re-run the harvest into a fresh --out"
                    )
                if sha256_file(path) != digest:
                    raise DataError(
                        f"shard {path} is corrupt (sha256 differs from the manifest); re-run the "
                        "harvest into a fresh --out"
                    )

    # ----- access ----------------------------------------------------------------------------
    def check_layer(self, layer: int | None) -> int:
        """`layer`, or the only stored layer when None; a one-line error if not stored."""
        if layer is None:
            if len(self.layers) > 1:
                raise DataError(f"{self.path} holds layers {self.layers}; choose one with --layer")
            return self.layers[0]
        if layer not in self.layers:
            raise DataError(
                f"{self.path} holds layers {self.layers}, not {layer}; pick one of them"
            )
        return layer

    def _map(self, shard: int, layer: int) -> np.ndarray:
        key = (shard, layer)
        if key not in self._maps:
            record = self.manifest.shards[shard]
            path = self.path / (
                tokens_file(record.stem) if layer < 0 else layer_file(record.stem, layer)
            )
            shape = (record.n_tokens,) if layer < 0 else (record.n_tokens, self.d_model)
            array = open_array(path, shape, "token" if layer < 0 else "activation")
            if layer < 0 and array.dtype != TOKEN_DTYPE:
                raise DataError(
                    f"{path} has token fields {array.dtype.names}, not {TOKEN_DTYPE.names}: it "
                    "was written by another saeprobe version; re-run the harvest"
                )
            self._maps[key] = array
        return self._maps[key]

    def _gather(self, index: np.ndarray, layer: int) -> np.ndarray:
        """Rows `index` (any order) of the concatenated shards."""
        if index.size and (index.min() < 0 or index.max() >= self.n_tokens):
            raise IndexError(f"token index out of range for a store of {self.n_tokens} tokens")
        shard_of = np.searchsorted(self._starts, index, side="right") - 1
        first = self._map(0, layer)
        out = np.empty((len(index), *first.shape[1:]), dtype=first.dtype)
        for shard in np.unique(shard_of):
            where = np.nonzero(shard_of == shard)[0]
            local = index[where] - self._starts[shard]
            order = np.argsort(local, kind="stable")  # sequential reads within the shard
            out[where[order]] = self._map(int(shard), layer)[local[order]]
        return out

    def activations(self, index, layer: int | None = None) -> Tensor:
        """Activations of tokens `index` (int array, list or slice) at `layer`, as stored."""
        if isinstance(index, slice):
            index = np.arange(self.n_tokens)[index]
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        return from_storage(self._gather(index, self.check_layer(layer)), self.manifest.dtype)

    def tokens(self, index=slice(None)) -> np.ndarray:
        """Per-token metadata (token_id, doc_id, window, position) for `index`."""
        if isinstance(index, slice):
            index = np.arange(self.n_tokens)[index]
        return self._gather(np.asarray(index, dtype=np.int64).reshape(-1), -1)

    def source(
        self,
        batch_size: int,
        layer: int | None = None,
        seed: int = 0,
        block_tokens: int = 1 << 20,
        rows: tuple[int, int] | None = None,
    ) -> StoreSource:
        """Batches over tokens `rows` = (start, stop) of the store (default: all of them)."""
        start, stop = rows if rows is not None else (0, self.n_tokens)
        if not 0 <= start < stop <= self.n_tokens:
            raise DataError(
                f"token range [{start}, {stop}) is not inside this store of {self.n_tokens} "
                "tokens; choose a range within it"
            )
        return StoreSource(
            self, self.check_layer(layer), batch_size, seed, block_tokens, start, stop
        )


class StoreSource:
    """A `BatchSource` over one layer: seeded shuffled batches, addressable by step.

    Each epoch visits the store's blocks of `block_tokens` rows in a seeded random order and
    each block's rows in a seeded random order, so memory holds one block's permutation, not the
    whole store's. Batch i is a pure function of (seed, i): resume is exact.
    """

    def __init__(
        self,
        store: ActivationStore,
        layer: int,
        batch_size: int,
        seed: int,
        block: int,
        start: int,
        stop: int,
    ):
        self.n = stop - start
        if self.n < batch_size:
            raise DataError(
                f"the store has {self.n} tokens to train on, fewer than batch_size={batch_size}; "
                "lower --batch-size or harvest more tokens"
            )
        self.store, self.layer, self.batch_size, self.seed = store, layer, batch_size, seed
        self.start = start
        self.block = max(block, batch_size)
        self.n_blocks = -(-self.n // self.block)
        self.per_epoch = self.n // batch_size
        self._perm_cache: dict[tuple[int, int], np.ndarray] = {}
        self._order_cache: tuple[int, np.ndarray] = (-1, np.empty(0, dtype=np.int64))

    @property
    def d_in(self) -> int:
        return self.store.d_model

    @property
    def normalization_scale(self) -> float:
        return self.store.normalization_scale(self.layer)

    def _generator(self, *key: int) -> torch.Generator:
        seed = np.random.SeedSequence([self.seed, *key]).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(seed) & (2**63 - 1))

    def _block_order(self, epoch: int) -> np.ndarray:
        """The blocks in the order `epoch` visits them."""
        if self._order_cache[0] != epoch:
            order = torch.randperm(self.n_blocks, generator=self._generator(epoch)).numpy()
            self._order_cache = (epoch, order)
        return self._order_cache[1]

    def _block_rows(self, epoch: int, block: int) -> np.ndarray:
        """Row ids of `block` in the shuffled order `epoch` reads them."""
        key = (epoch, block)
        if key not in self._perm_cache:
            if len(self._perm_cache) > 4:
                self._perm_cache.clear()
            first = block * self.block
            size = min(self.block, self.n - first)
            perm = torch.randperm(size, generator=self._generator(epoch, block)).numpy()
            self._perm_cache[key] = self.start + first + perm
        return self._perm_cache[key]

    def _epoch_rows(self, epoch: int, lo: int, hi: int) -> np.ndarray:
        """Rows [lo, hi) of the epoch's visiting order."""
        order = self._block_order(epoch)
        sizes = np.minimum(self.block, self.n - order * self.block)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        parts = []
        for position, block in enumerate(order):
            b_lo, b_hi = starts[position], starts[position + 1]
            if b_lo < hi and b_hi > lo:
                rows = self._block_rows(epoch, int(block))
                parts.append(rows[max(lo, b_lo) - b_lo : min(hi, b_hi) - b_lo])
        return np.concatenate(parts)

    def rows(self, step: int) -> np.ndarray:
        epoch, i = divmod(step, self.per_epoch)
        return self._epoch_rows(epoch, i * self.batch_size, (i + 1) * self.batch_size)

    def batches(self, start: int = 0) -> Iterator[Tensor]:
        step = start
        while True:
            yield self.store.activations(self.rows(step), self.layer)
            step += 1
