"""Buffer harvested rows into fixed-size shards, written by a background thread.

Rows arrive per forward batch. Whenever `shard_tokens` rows are buffered, a shard is cut and
handed to one writer thread (file writes and hashing release the GIL, so they overlap the next
forward pass). After each shard the rank's state file records which batch, and which row of that
batch, the next shard starts at; a resumed harvest replays that batch and drops the rows already
written, so no token is duplicated or lost.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from saeprobe.activations.manifest import NormSums, RankState, ShardRecord, save_state
from saeprobe.activations.shards import (
    TOKEN_DTYPE,
    layer_file,
    shard_stem,
    to_storage,
    tokens_file,
    write_array,
)


@dataclass
class Rows:
    """Kept tokens of one forward batch, from row `offset` of that batch's kept tokens on."""

    batch: int
    offset: int
    acts: dict[int, Tensor]  # layer -> [n, d_model] on CPU in the storage dtype
    tokens: np.ndarray  # TOKEN_DTYPE [n]

    def __len__(self) -> int:
        return len(self.tokens)

    def split(self, n: int) -> tuple[Rows, Rows]:
        head = Rows(
            self.batch, self.offset, {k: v[:n] for k, v in self.acts.items()}, self.tokens[:n]
        )
        tail = Rows(
            self.batch, self.offset + n, {k: v[n:] for k, v in self.acts.items()}, self.tokens[n:]
        )
        return head, tail


class ShardWriter:
    def __init__(
        self,
        out: Path,
        rank: int,
        layers: list[int],
        shard_tokens: int,
        state: RankState,
        quota: int | None = None,
    ):
        self.out, self.rank, self.layers = out, rank, layers
        self.shard_tokens = shard_tokens
        self.state = state
        self.quota = quota  # this rank's token budget; rows beyond it are dropped on arrival
        self.buffer: list[Rows] = []
        self.buffered = 0
        self.pending_outliers: dict[int, int] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer")
        self._jobs: list[Future] = []
        # Main-thread counters: the writer thread updates `state` only once a shard is on disk.
        self._next_index = len(state.shards)
        self._cut_tokens = state.n_tokens

    @property
    def total(self) -> int:
        """Tokens written or buffered so far, including those of earlier runs."""
        return self._cut_tokens + self.buffered

    def add(self, rows: Rows, n_outliers: int = 0) -> None:
        self.pending_outliers[rows.batch] = n_outliers
        if self.quota is not None and self.total + len(rows) > self.quota:
            rows, _ = rows.split(max(0, self.quota - self.total))
        if len(rows):
            self.buffer.append(rows)
            self.buffered += len(rows)
        while self.buffered >= self.shard_tokens:
            self._cut(self.shard_tokens, next_batch=rows.batch + 1)

    def full(self) -> bool:
        return self.quota is not None and self.total >= self.quota

    def finish(self, next_batch: int) -> RankState:
        """Write the last partial shard and mark the rank done."""
        while self.buffered:
            self._cut(min(self.buffered, self.shard_tokens), next_batch=next_batch)
        self._wait()
        self.state.n_outliers += sum(self.pending_outliers.values())
        self.state.done = True
        save_state(self.out, self.rank, self.state)
        self._pool.shutdown()
        return self.state

    def close(self) -> None:
        self._wait()
        self._pool.shutdown()

    def _cut(self, n: int, next_batch: int) -> None:
        taken, need = [], n
        while need:
            rows = self.buffer.pop(0)
            if len(rows) > need:
                rows, rest = rows.split(need)
                self.buffer.insert(0, rest)
            taken.append(rows)
            need -= len(rows)
        self.buffered -= n
        # Where the next shard starts: the front of what is still buffered, else the next batch.
        cursor = (self.buffer[0].batch, self.buffer[0].offset) if self.buffer else (next_batch, 0)
        committed = sum(v for b, v in self.pending_outliers.items() if b < cursor[0])
        self.pending_outliers = {b: v for b, v in self.pending_outliers.items() if b >= cursor[0]}
        # Chunks, not concatenations: the writer streams them into one file without a copy.
        acts = {layer: [r.acts[layer] for r in taken] for layer in self.layers}
        tokens = [r.tokens for r in taken]
        index, self._next_index = self._next_index, self._next_index + 1
        self._cut_tokens += n
        if len(self._jobs) >= 2:  # bound memory: at most two shards waiting for the disk
            self._jobs.pop(0).result()
        self._jobs.append(self._pool.submit(self._write, index, acts, tokens, cursor, committed))

    def _write(self, index, acts, tokens, cursor, committed) -> None:
        stem = shard_stem(self.rank, index)
        n = sum(len(t) for t in tokens)
        files = {}
        sums = NormSums(n=n)
        for layer, chunks in acts.items():
            path = self.out / layer_file(stem, layer)
            files[layer_file(stem, layer)] = write_array(path, [to_storage(x) for x in chunks])
            # Row norms in float32 (384+ squares per row lose nothing that matters), sums in
            # float64 so millions of rows do not.
            norms = torch.cat([torch.linalg.vector_norm(x.float(), dim=1) for x in chunks])
            sums.sum_sq[str(layer)] = float(norms.double().pow(2).sum())
            sums.sum_norm[str(layer)] = float(norms.double().sum())
        files[tokens_file(stem)] = write_array(self.out / tokens_file(stem), tokens)
        s = self.state
        s.shards.append(ShardRecord(stem=stem, rank=self.rank, n_tokens=n, files=files))
        s.n_tokens += n
        s.norms = s.norms.add(sums)
        s.next_batch, s.skip = cursor
        s.n_outliers += committed
        save_state(self.out, self.rank, s)

    def _wait(self) -> None:
        jobs, self._jobs = self._jobs, []
        for job in jobs:
            job.result()


def token_rows(**fields: Tensor) -> np.ndarray:
    """A TOKEN_DTYPE array from one tensor per field."""
    first = next(iter(fields.values()))
    rows = np.empty(len(first), dtype=TOKEN_DTYPE)
    for name in TOKEN_DTYPE.names:
        rows[name] = fields[name].numpy()
    return rows
