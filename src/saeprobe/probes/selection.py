"""Choosing k SAE latents on the training split: mean difference, normalised mean difference, L1.

All three rank only latents that fire (are non-zero) on at least one training row: a latent
that never fires on train is a constant there, carries no training signal, and would make
"k latents" a promise the probe cannot keep. Asking for more latents than fire is a DataError.

- `mean_diff`: |mean(z | y=1) - mean(z | y=0)|. Favours high-magnitude, high-frequency latents.
- `mean_diff_normalized`: the same after dividing each latent by its mean non-zero training
  activation, so a latent's scale stops mattering (Kantamneni et al.'s ranking).
- `l1`: an L1-regularised logistic path on standardised latents; C is swept until the number of
  non-zero weights is closest to k, preferring >= k (see `l1_select`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.svm import l1_min_c

from saeprobe.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_L1_PRESCREEN",
    "SELECTIONS",
    "L1Choice",
    "LatentStats",
    "check_ks",
    "l1_select",
    "latent_stats",
    "rank_latents",
    "select_latents",
]

SELECTIONS = ("mean_diff", "mean_diff_normalized", "l1")
# The L1 path runs on the top-N latents by standardised mean difference, not on all 12,288.
# That score is, up to a constant, the gradient of the L1 problem at w = 0, i.e. the order in
# which latents enter the path as C grows from its minimum, so screening drops latents the path
# would add last. 1,024 is 20x the largest default k (50) and keeps one liblinear fit at about
# 0.15 s on 3,000 rows, so a whole path (~40 fits) costs seconds, not minutes.
DEFAULT_L1_PRESCREEN = 1024
# liblinear penalises the intercept like a weight on a constant feature of this value; a large
# value makes the intercept nearly free, so the path selects latents, not a bias term.
_L1_INTERCEPT_SCALING = 10.0
_L1_GROWTH = 2.0  # C multiplier while searching upward for enough non-zero weights
_L1_MAX_GROWTH_STEPS = 30
_L1_MAX_STALLED_STEPS = 4
_L1_BISECTION_STEPS = 8
_STATS_BLOCK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class LatentStats:
    """Per-latent training statistics shared by every selection (computed once per SAE)."""

    n_pos: int
    n_neg: int
    fires: np.ndarray  # bool [m]: non-zero on at least one training row
    mean_pos: np.ndarray
    mean_neg: np.ndarray
    std: np.ndarray
    mean_nonzero: np.ndarray  # mean |z| over the rows where z != 0; 0 where it never fires

    @property
    def n_latents(self) -> int:
        return int(self.fires.size)

    @property
    def n_firing(self) -> int:
        return int(self.fires.sum())


def latent_stats(z: np.ndarray, y: np.ndarray) -> LatentStats:
    """Class means, standard deviation, firing mask and mean non-zero activation per latent.

    Accumulates in float64 over blocks of columns, so 3,000 x 12,288 float32 latents never get a
    full float64 copy.
    """
    z = np.asarray(z)
    pos = np.asarray(y).astype(bool)
    n, m = z.shape
    n_pos = int(pos.sum())
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError("the training split has one class only; add examples of the other class")
    weights = pos.astype(np.float64)
    fires = np.zeros(m, dtype=bool)
    mean_pos, mean_neg, std, mean_nonzero = (np.zeros(m) for _ in range(4))
    block = max(1, _STATS_BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, m, block):
        sl = slice(start, start + block)
        zb = z[:, sl].astype(np.float64)
        sum_all = zb.sum(axis=0)
        sum_pos = weights @ zb
        mean_pos[sl] = sum_pos / n_pos
        mean_neg[sl] = (sum_all - sum_pos) / n_neg
        std[sl] = zb.std(axis=0)
        nonzero = np.count_nonzero(zb, axis=0)
        fires[sl] = nonzero > 0
        abs_sum = np.abs(zb).sum(axis=0)
        mean_nonzero[sl] = np.divide(
            abs_sum, nonzero, out=np.zeros_like(abs_sum), where=nonzero > 0
        )
    return LatentStats(n_pos, n_neg, fires, mean_pos, mean_neg, std, mean_nonzero)


def check_ks(ks: Sequence[int], stats: LatentStats, sae: str = "the SAE") -> None:
    """DataError when some k exceeds the latents of the SAE or those firing on train."""
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ConfigError(f"k={k!r} must be a positive integer; pass ks like (1, 2, 5, 10)")
    k_max = max(ks)
    if k_max > stats.n_latents:
        raise DataError(
            f"k={k_max} exceeds the {stats.n_latents} latents of {sae}; "
            f"use ks no larger than {stats.n_latents}"
        )
    if k_max > stats.n_firing:
        raise DataError(
            f"k={k_max} exceeds the {stats.n_firing} latents of {sae} that fire on the training "
            f"split; use ks no larger than {stats.n_firing}"
        )


def _selection_score(stats: LatentStats, selection: str) -> np.ndarray:
    diff = stats.mean_pos - stats.mean_neg
    if selection == "mean_diff":
        return np.abs(diff)
    if selection == "mean_diff_normalized":
        # mean(z / c) = mean(z) / c, so normalising the difference is normalising the latent.
        return np.abs(
            np.divide(diff, stats.mean_nonzero, out=np.zeros_like(diff), where=stats.fires)
        )
    if selection == "standardized":
        scale = np.where(stats.std > 0, stats.std, 1.0)
        return np.abs(diff / scale)
    raise ConfigError(f"unknown selection {selection!r}; use one of {SELECTIONS}")


def rank_latents(stats: LatentStats, selection: str) -> np.ndarray:
    """Indices of the firing latents, best first by the selection score; ties by index."""
    score = _selection_score(stats, selection)
    firing = np.flatnonzero(stats.fires)
    # Stable sort on the negated score keeps the lower index first among equal scores.
    return firing[np.argsort(-score[firing], kind="stable")]


@dataclass(frozen=True)
class L1Choice:
    """The latents the L1 path picked for one k, and how."""

    latents: np.ndarray
    c: float  # inverse L1 strength of the chosen point on the path (standardised latents)
    n_nonzero: int  # non-zero weights at that C
    n_padded: int  # latents added from the prescreen ranking because the path never reached k


def _l1_penalty_kwargs() -> dict[str, object]:
    """scikit-learn 1.8 deprecated `penalty` in favour of `l1_ratio`; support both sides."""
    major, minor = (int(p) for p in sklearn.__version__.split(".")[:2])
    return {"l1_ratio": 1.0} if (major, minor) >= (1, 8) else {"penalty": "l1"}


def _l1_fit(x: np.ndarray, y: np.ndarray, c: float) -> np.ndarray:
    model = LogisticRegression(
        **_l1_penalty_kwargs(),
        solver="liblinear",
        C=c,
        intercept_scaling=_L1_INTERCEPT_SCALING,
        tol=1e-4,
        max_iter=1000,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return model.coef_[0].copy()


def l1_select(
    z: np.ndarray,
    y: np.ndarray,
    ks: Sequence[int],
    *,
    stats: LatentStats | None = None,
    prescreen: int = DEFAULT_L1_PRESCREEN,
) -> dict[int, L1Choice]:
    """For every k, the latents of the L1-logistic path point whose support size is closest to k.

    Procedure (training rows only):
    1. Keep the top `prescreen` firing latents by standardised mean difference (at least
       max(ks) of them) and standardise them with training statistics, so the L1 penalty does
       not favour latents for their scale.
    2. Start at the smallest C with a non-zero weight (`l1_min_c`) and double C until the
       support reaches max(ks) (or stops growing).
    3. For each k, bisect log C between the last point below k and the first at or above k to
       land as close to k as the path allows.
    4. Take the point with the smallest support >= k (smaller C on ties). If its support is
       larger than k, keep the k latents with the largest |weight|, so exactly k come out. If
       the path never reaches k, keep all its non-zero latents and fill up from the prescreen
       ranking (`n_padded` counts them).
    """
    z = np.asarray(z)
    y = np.asarray(y).astype(int)
    stats = latent_stats(z, y) if stats is None else stats
    check_ks(ks, stats)
    if prescreen < 1:
        raise ConfigError(f"l1_prescreen={prescreen} must be positive; pass e.g. 1024")
    k_max = max(ks)
    screened = rank_latents(stats, "standardized")[: max(prescreen, k_max)]
    x = z[:, screened].astype(np.float64)
    x -= x.mean(axis=0)
    scale = x.std(axis=0)
    x /= np.where(scale > 0, scale, 1.0)

    fits: dict[float, np.ndarray] = {}

    def support(c: float) -> int:
        if c not in fits:
            fits[c] = _l1_fit(x, y, c)
        return int(np.count_nonzero(fits[c]))

    c = float(l1_min_c(x, y, loss="log", intercept_scaling=_L1_INTERCEPT_SCALING)) * 1.05
    best, stalled = -1, 0
    for _ in range(_L1_MAX_GROWTH_STEPS):
        size = support(c)
        if size >= k_max:
            break
        # On (nearly) separable data the support can plateau below k: further doublings only
        # make liblinear slower, so give up after a few steps without growth.
        stalled = stalled + 1 if size <= best else 0
        if stalled >= _L1_MAX_STALLED_STEPS:
            break
        best = max(best, size)
        c *= _L1_GROWTH

    out: dict[int, L1Choice] = {}
    for k in sorted(set(int(k) for k in ks)):
        for _ in range(_L1_BISECTION_STEPS):
            above = [cc for cc in fits if support(cc) >= k]
            if not above:
                break
            hi = min(above)
            # The support is not strictly monotone in C: bracket below the first C at/above k.
            below = [cc for cc in fits if support(cc) < k and cc < hi]
            if not below or support(hi) == k:
                break
            lo = max(below)
            support(float(np.sqrt(lo * hi)))
        at_least = [cc for cc in fits if support(cc) >= k]
        if at_least:
            c_k = min(at_least, key=lambda cc: (support(cc), cc))
            coef = fits[c_k]
            nonzero = np.flatnonzero(coef)
            keep = nonzero[np.argsort(-np.abs(coef[nonzero]), kind="stable")][:k]
            out[k] = L1Choice(screened[keep], c_k, len(nonzero), 0)
        else:
            c_k = max(fits, key=lambda cc: (support(cc), -cc))
            coef = fits[c_k]
            nonzero = np.flatnonzero(coef)
            keep = list(nonzero[np.argsort(-np.abs(coef[nonzero]), kind="stable")])
            taken = set(keep)
            fill = [j for j in range(len(screened)) if j not in taken][: k - len(keep)]
            out[k] = L1Choice(
                screened[np.array(keep + fill, dtype=int)], c_k, len(nonzero), len(fill)
            )
    return out


def select_latents(
    z: np.ndarray,
    y: np.ndarray,
    ks: Sequence[int],
    selection: str,
    *,
    stats: LatentStats | None = None,
    l1_prescreen: int = DEFAULT_L1_PRESCREEN,
    sae: str = "the SAE",
) -> dict[int, np.ndarray]:
    """k -> the selected latent indices (best first), for every k in `ks`, from training rows."""
    if selection not in SELECTIONS:
        raise ConfigError(f"unknown selection {selection!r}; use one of {SELECTIONS}")
    stats = latent_stats(z, y) if stats is None else stats
    check_ks(ks, stats, sae)
    if selection == "l1":
        choices = l1_select(z, y, ks, stats=stats, prescreen=l1_prescreen)
        return {k: choices[k].latents for k in ks}
    order = rank_latents(stats, selection)
    return {k: order[:k].copy() for k in ks}
