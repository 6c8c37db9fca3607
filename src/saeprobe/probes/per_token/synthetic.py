"""Per-token inputs with a planted rule that only token-level aggregation can read.

Every prompt is a run of Gaussian token vectors. A positive prompt carries the label in ONE
token, at a random position, along a fixed direction u (+`signal`); a negative prompt has no
such token. Mean pooling dilutes the peak by the prompt length (its u-component is
signal / length against noise of 1 / sqrt(length) per dimension), so a mean-pooled linear probe
stays far from perfect, while a max-type aggregation of a per-token linear score finds the
peak.

With `run` > 1 the signal (+`signal` each) sits on that many consecutive tokens: with a weak
`signal` no single token stands out, but a rolling window of `run` tokens does. With `balanced`, negatives carry the same total along u, spread evenly over their tokens: the
mean-pooled classes then coincide along u (mean pooling is at chance), the hard case for
gradient training of max-type probes.
"""

from __future__ import annotations

import numpy as np

from saeprobe.probes.per_token.tokens import TokenFeatures

__all__ = ["make_planted_tokens"]


def make_planted_tokens(
    n: int,
    *,
    d: int = 16,
    min_len: int = 4,
    max_len: int = 40,
    signal: float = 4.0,
    rows_per_base: int = 2,
    seed: int = 0,
    base_offset: int = 0,
    balanced: bool = False,
    run: int = 1,
) -> tuple[TokenFeatures, np.ndarray, list[str], np.ndarray]:
    """(tokens, labels [n], base_ids, mean-pooled vectors [n, d]); float16 values, as cached."""
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(12345).normal(size=d)
    direction /= np.linalg.norm(direction)
    lengths = rng.integers(max(min_len, run), max_len + 1, size=n)
    y = (rng.random(n) < 0.5).astype(np.int64)
    y[:2] = [0, 1]
    blocks = []
    for length, label in zip(lengths, y, strict=True):
        x = rng.normal(size=(length, d))
        if label:
            start = rng.integers(length - run + 1)
            x[start : start + run] += signal * direction
        elif balanced:
            x += (signal / length) * direction
        blocks.append(x)
    values = np.concatenate(blocks).astype(np.float16)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    base_ids = [f"b{base_offset + i // rows_per_base}" for i in range(n)]
    pooled = np.stack([b.mean(axis=0) for b in blocks]).astype(np.float32)
    return TokenFeatures(values, offsets), y, base_ids, pooled
