"""Choose latents to score and aggregate their scores.

With firing frequency ω_i (the fraction of tokens on which latent i fires) and score s_i over
the scored latents S:

    uniform_mean             (1/|S|) Σ s_i
    frequency_weighted_mean  Σ ω_i s_i / Σ ω_i

each with a 95 % percentile-bootstrap interval (`_ci_low`, `_ci_high`) over latents, and
`per_quantile`: the mean score in each of `n_bins` equal-count bins of the scored latents ranked
by frequency (bin 0 = the rarest).

Sampling (`sample_latents`) draws among live latents only: `uniform` gives every one the same
chance; `frequency` draws with probability ∝ ω_i, without replacement. Under uniform sampling
the two means estimate the SAE's uniform and frequency-weighted averages. Under frequency
sampling the sample is already tilted towards frequent latents, so its *uniform* mean estimates
the frequency-weighted average (exactly so only with replacement), and the reported
`frequency_weighted_mean` weights it a second time; `autointerp.json` records which sampling was
used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from saeprobe.errors import DataError


def sample_latents(
    candidates: np.ndarray, frequency: np.ndarray, n: int, how: str, seed: int
) -> np.ndarray:
    """`n` of `candidates` (latent ids), sorted; all of them when there are no more than n."""
    candidates = np.asarray(candidates)
    if not candidates.size:
        raise DataError(
            "no live latent has held-out examples to score; collect records over more tokens "
            "(saeprobe latents on a larger store)"
        )
    if n >= candidates.size:
        return np.sort(candidates)
    rng = np.random.default_rng(seed)
    if how == "uniform":
        return np.sort(rng.choice(candidates, size=n, replace=False))
    if how == "frequency":
        w = frequency[candidates].astype(float)
        return np.sort(rng.choice(candidates, size=n, replace=False, p=w / w.sum()))
    raise ValueError(f"unknown sampling {how!r}")


def aggregate(
    scores: Sequence[float],
    frequencies: Sequence[float],
    n_bootstrap: int = 1000,
    n_bins: int = 5,
    seed: int = 0,
    prefix: str = "",
) -> dict[str, Any]:
    s = np.asarray(scores, dtype=float)
    w = np.asarray(frequencies, dtype=float)
    p = prefix
    if not s.size:
        return {f"{p}n": 0, f"{p}uniform_mean": None, f"{p}frequency_weighted_mean": None}
    if not (w > 0).all():
        raise ValueError("frequency weights must be positive: dead latents are never scored")
    uniform, weighted = float(s.mean()), float((w * s).sum() / w.sum())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, s.size, (n_bootstrap, s.size))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot_w = (w[idx] * s[idx]).sum(1) / w[idx].sum(1)
    boots = np.stack([s[idx].mean(1), boot_w], axis=1)
    lo, hi = np.nanpercentile(boots, [2.5, 97.5], axis=0)
    out: dict[str, Any] = {
        f"{p}n": int(s.size),
        f"{p}uniform_mean": uniform,
        f"{p}uniform_mean_ci_low": float(lo[0]),
        f"{p}uniform_mean_ci_high": float(hi[0]),
        f"{p}frequency_weighted_mean": weighted,
        f"{p}frequency_weighted_mean_ci_low": float(lo[1]),
        f"{p}frequency_weighted_mean_ci_high": float(hi[1]),
    }
    out[f"{p}per_quantile"] = per_quantile(s, w, n_bins, n_bootstrap, seed)
    return out


def per_quantile(
    scores: np.ndarray, frequencies: np.ndarray, n_bins: int, n_bootstrap: int, seed: int
) -> list[dict[str, Any]]:
    """Mean score per equal-count frequency bin (ties in frequency broken by latent order)."""
    order = np.argsort(frequencies, kind="stable")
    bins = np.array_split(order, min(n_bins, scores.size))
    rng = np.random.default_rng(seed + 1)
    out = []
    for b, idx in enumerate(bins):
        s, f = scores[idx], frequencies[idx]
        boots = s[rng.integers(0, s.size, (n_bootstrap, s.size))].mean(1)
        lo, hi = np.percentile(boots, [2.5, 97.5])
        out.append(
            {
                "bin": b,
                "n": int(s.size),
                "frequency_min": float(f.min()),
                "frequency_median": float(np.median(f)),
                "frequency_max": float(f.max()),
                "mean": float(s.mean()),
                "ci_low": float(lo),
                "ci_high": float(hi),
            }
        )
    return out
