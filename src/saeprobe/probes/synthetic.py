"""Synthetic probe-stage inputs with known answers, for tests, benchmarks and demos.

Rows come in base prompts of `rows_per_base` transformations. The dense residual carries a
planted label direction plus a per-base-prompt offset (so grouped CV matters); every SAE's
latents are sparse and non-negative with log-uniform firing rates, and the first
`n_informative` latents fire more often on positives (latent 0 most strongly). The
reconstruction is the residual with some of the label direction removed plus noise, so the
reconstruction probe is measurably worse than the dense one.
"""

from __future__ import annotations

import numpy as np

from saeprobe.probes.data import ProbeData, SaeFeatures

__all__ = ["make_synthetic"]

_TRANSFORMS = {
    "train": ("none", "aim", "roleplay", "how_many_words"),
    "val": ("none", "aim", "roleplay", "how_many_words"),
    "ood": ("none", "pliny", "evil_confidant", "all_caps"),
}
_SOURCES = {
    "train": ("harmbench", "alpaca"),
    "val": ("harmbench", "alpaca"),
    "ood": ("advbench", "or_bench"),
}
# Innocuous transformations turn a harmful base prompt into a (hard) negative.
_INNOCUOUS = {"how_many_words", "all_caps"}


def _split_rows(
    rng: np.random.Generator, split: str, n: int, rows_per_base: int, offset: int
) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    n_base = -(-n // rows_per_base)
    harmful_base = rng.random(n_base) < 0.5
    base = np.repeat(np.arange(n_base), rows_per_base)[:n]
    transforms = np.resize(np.array(_TRANSFORMS[split]), n)
    harmful = harmful_base[base]
    y = (harmful & ~np.isin(transforms, list(_INNOCUOUS))).astype(np.int64)
    src_pos, src_neg = _SOURCES[split]
    source = [src_pos if h else src_neg for h in harmful]
    base_id = [f"{split}-{offset + b}" for b in base]
    return y, source, [str(t) for t in transforms], base_id


def make_synthetic(
    n_train: int = 300,
    n_val: int = 100,
    n_ood: int = 100,
    *,
    d_model: int = 32,
    d_sae: int = 256,
    sae_names: tuple[str, ...] = ("sae_a",),
    n_informative: int = 8,
    rows_per_base: int = 4,
    signal: float = 1.0,
    seed: int = 0,
) -> tuple[ProbeData, dict[str, SaeFeatures]]:
    """ProbeData and {name: SaeFeatures} with a planted label signal (float32 arrays)."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=d_model)
    direction /= np.linalg.norm(direction)
    sizes = {"train": n_train, "val": n_val, "ood": n_ood}
    data_y, X, source, transform, base_id = {}, {}, {}, {}, {}
    for i, (split, n) in enumerate(sizes.items()):
        y, src, tr, bid = _split_rows(rng, split, n, rows_per_base, offset=i * n)
        base_codes = np.unique(bid, return_inverse=True)[1]
        base_offsets = rng.normal(scale=0.5, size=(base_codes.max() + 1, d_model))
        # OOD shifts the signal a little weaker, as held-out wrappers do.
        strength = signal * (0.7 if split == "ood" else 1.0)
        x = rng.normal(size=(n, d_model)) + base_offsets[base_codes]
        x += strength * (2 * y[:, None] - 1) * direction
        data_y[split], X[split] = y, x.astype(np.float32)
        source[split], transform[split], base_id[split] = src, tr, bid

    rates = np.exp(rng.uniform(np.log(1e-3), np.log(0.1), size=d_sae)).astype(np.float32)
    saes: dict[str, SaeFeatures] = {}
    for s, name in enumerate(sae_names):
        sae_rng = np.random.default_rng([seed, s + 1])
        Z, R = {}, {}
        for split, n in sizes.items():
            y = data_y[split]
            z = np.zeros((n, d_sae), dtype=np.float32)
            for start in range(0, n, 512):  # row blocks keep the float32 temporaries small
                rows = slice(start, start + 512)
                fire = sae_rng.random((z[rows].shape[0], d_sae), dtype=np.float32) < rates
                mag = sae_rng.exponential(1.0, size=fire.shape).astype(np.float32)
                z[rows] = fire * mag
            # Informative latents: fire on a share of positives that decays with the index.
            for j in range(min(n_informative, d_sae)):
                share = 0.9 / (1 + j) * (0.6 if split == "ood" else 1.0)
                hit = (y == 1) & (sae_rng.random(n) < share)
                z[hit, j] += (1.0 + sae_rng.exponential(1.0, size=int(hit.sum()))).astype(
                    np.float32
                )
            r = X[split] - 0.3 * signal * (2 * y[:, None] - 1) * direction
            r = r + sae_rng.normal(scale=0.5, size=r.shape)
            Z[split], R[split] = z, r.astype(np.float32)
        saes[name] = SaeFeatures(Z=Z, R=R)
    data = ProbeData(X=X, y=data_y, source=source, transform=transform, base_id=base_id)
    return data, saes
