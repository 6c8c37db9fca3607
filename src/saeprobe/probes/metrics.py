"""Probe metrics: exact AUROC with ties, stratified bootstrap intervals, TPR at a fixed FPR.

AUROC is the Mann-Whitney statistic: the probability that a random positive scores above a
random negative, with ties counting one half. It is computed from average ranks, so it is exact
(no threshold grid, no trapezoid approximation) and tie-aware, which matters for SAE latents:
most of their values are exactly zero.

Every function that needs both classes raises `DataError` naming the split when one is missing,
instead of returning NaN that would silently drop out of a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from saeprobe.errors import DataError

__all__ = [
    "BootstrapResult",
    "SplitMetrics",
    "auroc",
    "auroc_columns",
    "bootstrap_auroc",
    "evaluate_scores",
    "group_aurocs",
    "threshold_at_fpr",
    "tpr_at_fpr",
    "rates_at_threshold",
]

DEFAULT_N_BOOTSTRAP = 1000
DEFAULT_MAX_FPR = 0.01
# Cap on the [resamples, values] work arrays of the bootstrap (elements); keeps memory ~100 MB.
_BOOTSTRAP_BLOCK_ELEMENTS = 4_000_000
# Columns ranked per block in `auroc_columns`; bounds the int64 work arrays to ~25 MB each.
_COLUMN_BLOCK_ELEMENTS = 3_000_000


def _labels(y: np.ndarray | Sequence[int], split: str) -> np.ndarray:
    """`y` as a boolean vector (True = positive); DataError unless both classes are present."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise DataError(f"labels of split {split!r} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise DataError(f"labels of split {split!r} must be 0 or 1; map the classes to 0/1")
    pos = arr.astype(bool)
    n_pos = int(pos.sum())
    if n_pos == 0 or n_pos == pos.size:
        present, missing = ("negative", "positive") if n_pos == 0 else ("positive", "negative")
        raise DataError(
            f"split {split!r} has only {present} labels ({pos.size} rows), so AUROC is "
            f"undefined; add {missing} examples to the {split!r} split"
        )
    return pos


def _scores(scores: np.ndarray | Sequence[float], n: int, split: str) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (n,):
        raise DataError(
            f"split {split!r}: got {s.shape} scores for {n} labels; pass one score per row"
        )
    if np.isnan(s).any():
        raise DataError(
            f"split {split!r}: scores contain NaN; check the probe inputs for NaN activations"
        )
    return s


def _average_ranks(s: np.ndarray) -> np.ndarray:
    """1-based ranks of `s`, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    # The i-th distinct value occupies ranks (cum_i - count_i + 1) .. cum_i; their mean is below.
    cum = np.cumsum(counts)
    return (cum - (counts - 1) / 2.0)[inverse]


def auroc(
    y: np.ndarray | Sequence[int], scores: np.ndarray | Sequence[float], *, split: str = "scores"
) -> float:
    """Exact AUROC of `scores` for binary labels `y` (ties count one half).

    Equals `sklearn.metrics.roc_auc_score(y, scores)`; `split` only names the data in errors.
    """
    pos = _labels(y, split)
    s = _scores(scores, pos.size, split)
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    rank_sum = float(_average_ranks(s)[pos].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def auroc_columns(
    matrix: np.ndarray, y: np.ndarray | Sequence[int], *, split: str = "train"
) -> np.ndarray:
    """Exact AUROC of every column of `matrix` [n, m] as a score for `y` (ties count one half).

    Vectorised over columns in blocks: each block is transposed so every column becomes a
    contiguous row, sorted once, and tie runs get their average rank by a running max/min of
    run boundaries. Used to rank thousands of SAE latents at once.
    """
    pos = _labels(y, split)
    mat = np.asarray(matrix)
    if mat.ndim != 2 or mat.shape[0] != pos.size:
        raise DataError(
            f"split {split!r}: matrix of shape {mat.shape} does not have one row per label "
            f"({pos.size}); pass [n_rows, n_columns]"
        )
    n, m = mat.shape
    n_pos = int(pos.sum())
    n_neg = n - n_pos
    out = np.empty(m, dtype=np.float64)
    block = max(1, _COLUMN_BLOCK_ELEMENTS // max(n, 1))
    idx = np.arange(n)
    for start in range(0, m, block):
        cols = np.ascontiguousarray(mat[:, start : start + block].T)
        if np.isnan(cols).any():
            raise DataError(f"split {split!r}: matrix contains NaN; check the activations")
        order = np.argsort(cols, axis=1)
        srt = np.take_along_axis(cols, order, axis=1)
        # Position p starts a tie run when its value differs from p-1; it ends one when it
        # differs from p+1. Propagating run starts forward and run ends backward gives every
        # position its run's first and last index; their mean + 1 is the average rank.
        new = np.ones(srt.shape, dtype=bool)
        new[:, 1:] = srt[:, 1:] != srt[:, :-1]
        first = np.maximum.accumulate(np.where(new, idx, 0), axis=1)
        last_flag = np.ones(srt.shape, dtype=bool)
        last_flag[:, :-1] = new[:, 1:]
        last = np.minimum.accumulate(np.where(last_flag, idx, n - 1)[:, ::-1], axis=1)[:, ::-1]
        ranks = (first + last) / 2.0 + 1.0
        rank_sum = (ranks * pos[order]).sum(axis=1)
        out[start : start + block] = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return out


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile interval of the bootstrap AUROC distribution; `replicates` kept for pairing."""

    low: float
    high: float
    replicates: np.ndarray


def bootstrap_auroc(
    y: np.ndarray | Sequence[int],
    scores: np.ndarray | Sequence[float],
    *,
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
    seed: int | Sequence[int] = 0,
    confidence: float = 0.95,
    split: str = "scores",
    groups: Sequence[object] | np.ndarray | None = None,
) -> BootstrapResult:
    """Percentile bootstrap of the AUROC: by group when `groups` is given, else by row.

    With `groups` (e.g. base_id), whole groups are resampled with replacement (a cluster
    bootstrap): the transformations of one base prompt are correlated, so resampling them as
    independent rows would understate the variance. See `_grouped_replicates`.

    Without groups, a stratified row bootstrap:

    Each resample draws n_pos rows with replacement from the positives and n_neg from the
    negatives, so both classes are always present and the class balance is fixed. The interval
    is the (1-confidence)/2 and (1+confidence)/2 quantiles of the resampled AUROCs; the point
    estimate to report beside it is the full-sample `auroc`.

    Pairing: the resample indices depend only on (seed, n_pos, n_neg), never on the scores. Two
    score vectors for the same split and seed are therefore resampled identically, so the
    difference of their replicates is a paired bootstrap of the AUROC difference.

    Rows are resampled independently. When rows share a base prompt (transformations of one
    prompt) they are correlated, and a row bootstrap understates the variance somewhat.

    Vectorised: per block of resamples, the resampled negatives are counted per distinct score
    value (one bincount), a cumulative sum gives "negatives below + half of negatives equal" for
    every value, and each resampled positive looks its value up. Cost O(n_bootstrap * n).
    """
    if n_bootstrap < 1:
        raise DataError(f"n_bootstrap={n_bootstrap} must be at least 1; pass e.g. 1000")
    if not 0 < confidence < 1:
        raise DataError(f"confidence={confidence} must be in (0, 1); pass e.g. 0.95")
    pos = _labels(y, split)
    s = _scores(scores, pos.size, split)
    _, value_id = np.unique(s, return_inverse=True)
    n_values = int(value_id.max()) + 1
    tail = (1.0 - confidence) / 2.0
    if groups is not None:
        reps = _grouped_replicates(pos, value_id, n_values, groups, n_bootstrap, seed, split)
        low, high = np.quantile(reps, [tail, 1.0 - tail])
        return BootstrapResult(low=float(low), high=float(high), replicates=reps)
    pos_ids = value_id[pos]
    neg_ids = value_id[~pos]
    n_pos, n_neg = pos_ids.size, neg_ids.size

    rng = np.random.default_rng(seed)
    # The block size depends only on the class sizes, so the random stream (and thus the
    # resamples) is identical for every score vector of a split: see "Pairing" above.
    block = max(1, _BOOTSTRAP_BLOCK_ELEMENTS // (n_pos + n_neg))
    reps = np.empty(n_bootstrap, dtype=np.float64)
    for start in range(0, n_bootstrap, block):
        b = min(block, n_bootstrap - start)
        pos_draw = rng.integers(0, n_pos, size=(b, n_pos))
        neg_draw = rng.integers(0, n_neg, size=(b, n_neg))
        offsets = (np.arange(b) * n_values)[:, None]
        neg_counts = np.bincount(
            (offsets + neg_ids[neg_draw]).ravel(), minlength=b * n_values
        ).reshape(b, n_values)
        below_or_half = np.cumsum(neg_counts, axis=1) - 0.5 * neg_counts
        wins = np.take_along_axis(below_or_half, pos_ids[pos_draw], axis=1).sum(axis=1)
        reps[start : start + b] = wins / (n_pos * n_neg)
    low, high = np.quantile(reps, [tail, 1.0 - tail])
    return BootstrapResult(low=float(low), high=float(high), replicates=reps)


def _grouped_replicates(
    pos: np.ndarray,
    value_id: np.ndarray,
    n_values: int,
    groups: Sequence[object] | np.ndarray,
    n_bootstrap: int,
    seed: int | Sequence[int],
    split: str,
) -> np.ndarray:
    """AUROC replicates of a cluster bootstrap: draw len(groups) groups with replacement; a
    row's weight is how often its group was drawn.

    Weighted AUROC = sum over (positive i, negative j) of w_i w_j [s_i > s_j, ties 1/2], divided
    by (sum of positive weights)(sum of negative weights); computed per block of resamples with
    one weighted bincount per block, like the row bootstrap. The draws depend only on (seed,
    number of groups), so two score vectors of a split are resampled identically (paired).
    Resamples that happen to contain one class only are redrawn.
    """
    groups = np.asarray(groups)
    if groups.shape[0] != pos.size:
        raise DataError(
            f"{split}: {groups.shape[0]} group labels for {pos.size} rows; pass one per row"
        )
    _, group_id = np.unique(groups, return_inverse=True)
    n_groups = int(group_id.max()) + 1
    rng = np.random.default_rng(seed)
    block = max(1, _BOOTSTRAP_BLOCK_ELEMENTS // max(pos.size, n_groups))
    reps: list[np.ndarray] = []
    n_done, attempts = 0, 0
    while n_done < n_bootstrap:
        attempts += 1
        if attempts > 100 * (n_bootstrap // block + 1):
            raise DataError(
                f"{split}: almost no group resample holds both classes; use more base prompts "
                "or bootstrap by row"
            )
        b = min(block, n_bootstrap - n_done)
        draws = rng.integers(0, n_groups, size=(b, n_groups))
        offsets = (np.arange(b) * n_groups)[:, None]
        counts = np.bincount((offsets + draws).ravel(), minlength=b * n_groups).reshape(b, -1)
        w = counts[:, group_id].astype(np.float64)  # [b, n] row weights
        w_pos, w_neg = w * pos, w * ~pos
        value_offsets = (np.arange(b) * n_values)[:, None]
        neg_mass = np.bincount(
            (value_offsets + value_id[None, :]).ravel(),
            weights=w_neg.ravel(),
            minlength=b * n_values,
        ).reshape(b, n_values)
        below_or_half = np.cumsum(neg_mass, axis=1) - 0.5 * neg_mass
        wins = (
            np.take_along_axis(below_or_half, np.broadcast_to(value_id, w.shape), axis=1) * w_pos
        ).sum(axis=1)
        denominator = w_pos.sum(axis=1) * w_neg.sum(axis=1)
        ok = denominator > 0
        reps.append(wins[ok] / denominator[ok])
        n_done += int(ok.sum())
    return np.concatenate(reps)[:n_bootstrap]


def tpr_at_fpr(
    y: np.ndarray | Sequence[int],
    scores: np.ndarray | Sequence[float],
    max_fpr: float = DEFAULT_MAX_FPR,
    *,
    split: str = "scores",
) -> float:
    """The largest true-positive rate over thresholds whose false-positive rate is <= max_fpr.

    A row is flagged when its score is >= the threshold; thresholds range over the distinct
    scores plus +inf (flag nothing), so ties are flagged together, never split. The threshold is
    chosen on the negatives of the split being evaluated, which makes this an in-sample,
    slightly optimistic operating point (under shift, very optimistic: `threshold_at_fpr` on
    validation plus `rates_at_threshold` gives the deployable one). With fewer than 1/max_fpr negatives (100 at 1 %), no
    false positive is allowed, so the value is the TPR at zero false positives.
    """
    if not 0 <= max_fpr <= 1:
        raise DataError(f"max_fpr={max_fpr} must be a rate in [0, 1]; pass e.g. 0.01")
    pos = _labels(y, split)
    s = _scores(scores, pos.size, split)
    pos_sorted = np.sort(s[pos])
    neg_sorted = np.sort(s[~pos])
    thresholds = np.append(np.unique(s), np.inf)
    # Rows with score >= t are those at or after the left insertion point of t.
    fpr = (neg_sorted.size - np.searchsorted(neg_sorted, thresholds, "left")) / neg_sorted.size
    tpr = (pos_sorted.size - np.searchsorted(pos_sorted, thresholds, "left")) / pos_sorted.size
    # A tiny tolerance so that e.g. 1/100 is not rejected by float rounding of 0.01.
    return float(tpr[fpr <= max_fpr + 1e-12].max())


def threshold_at_fpr(
    y: np.ndarray | Sequence[int],
    scores: np.ndarray | Sequence[float],
    max_fpr: float = DEFAULT_MAX_FPR,
    *,
    split: str = "val",
) -> float:
    """The operating threshold `tpr_at_fpr` uses on this split: the lowest of the split's
    distinct scores (or +inf) at which flagging `score >= threshold` keeps the split's FPR
    within `max_fpr`. Fixed on validation, it is the threshold one would deploy."""
    if not 0 <= max_fpr <= 1:
        raise DataError(f"max_fpr={max_fpr} must be a rate in [0, 1]; pass e.g. 0.01")
    pos = _labels(y, split)
    s = _scores(scores, pos.size, split)
    neg_sorted = np.sort(s[~pos])
    thresholds = np.append(np.unique(s), np.inf)
    fpr = (neg_sorted.size - np.searchsorted(neg_sorted, thresholds, "left")) / neg_sorted.size
    return float(thresholds[np.flatnonzero(fpr <= max_fpr + 1e-12)[0]])


def rates_at_threshold(
    y: np.ndarray | Sequence[int],
    scores: np.ndarray | Sequence[float],
    threshold: float,
    *,
    split: str = "scores",
) -> tuple[float, float]:
    """(TPR, FPR) of flagging `score >= threshold` on a split."""
    pos = _labels(y, split)
    flagged = _scores(scores, pos.size, split) >= threshold
    return float(flagged[pos].mean()), float(flagged[~pos].mean())


@dataclass(frozen=True)
class SplitMetrics:
    """Everything the suite records about one probe's scores on one split."""

    auroc: float
    auroc_ci_low: float
    auroc_ci_high: float
    tpr_at_1pct_fpr: float
    n: int
    n_pos: int
    replicates: np.ndarray
    # The deployable operating point: the threshold fixed on the validation negatives
    # (`threshold_at_fpr` of val) applied unchanged to this split, and the FPR it realises
    # here. None when no validation split was scored.
    tpr_at_1pct_fpr_val_threshold: float | None = None
    fpr_at_val_threshold: float | None = None

    def as_record(self) -> dict[str, float | int | None]:
        return {
            "auroc": self.auroc,
            "auroc_ci_low": self.auroc_ci_low,
            "auroc_ci_high": self.auroc_ci_high,
            "tpr_at_1pct_fpr": self.tpr_at_1pct_fpr,
            "tpr_at_1pct_fpr_val_threshold": self.tpr_at_1pct_fpr_val_threshold,
            "fpr_at_val_threshold": self.fpr_at_val_threshold,
            "n": self.n,
            "n_pos": self.n_pos,
        }


def evaluate_scores(
    y: np.ndarray | Sequence[int],
    scores: np.ndarray | Sequence[float],
    *,
    split: str,
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
    seed: int | Sequence[int] = 0,
    max_fpr: float = DEFAULT_MAX_FPR,
    groups: Sequence[object] | np.ndarray | None = None,
    val_threshold: float | None = None,
) -> SplitMetrics:
    """AUROC, its bootstrap interval (by group when `groups` is given), TPR at `max_fpr`
    (1 % by default) with the split's own threshold, and class counts. With `val_threshold`
    (from `threshold_at_fpr` on the validation split), also the TPR and realised FPR there."""
    pos = _labels(y, split)
    boot = bootstrap_auroc(
        pos, scores, n_bootstrap=n_bootstrap, seed=seed, split=split, groups=groups
    )
    at_val = (None, None)
    if val_threshold is not None:
        at_val = rates_at_threshold(pos, scores, val_threshold, split=split)
    return SplitMetrics(
        auroc=auroc(pos, scores, split=split),
        auroc_ci_low=boot.low,
        auroc_ci_high=boot.high,
        tpr_at_1pct_fpr=tpr_at_fpr(pos, scores, max_fpr, split=split),
        n=int(pos.size),
        n_pos=int(pos.sum()),
        replicates=boot.replicates,
        tpr_at_1pct_fpr_val_threshold=at_val[0],
        fpr_at_val_threshold=at_val[1],
    )


def group_aurocs(
    y: np.ndarray | Sequence[int],
    scores: np.ndarray | Sequence[float],
    groups: Sequence[object],
    *,
    split: str = "ood",
) -> list[dict[str, object]]:
    """AUROC of each group of rows (e.g. per source dataset or per transformation).

    Convention for groups holding one class only (common: a jailbreak wrapper is applied to
    harmful prompts only, so its group is all positive):
    - both classes in the group: AUROC on the group's rows alone (`reference` "group");
    - positives only: the group's positives against every negative of the split
      (`reference` "split_negatives"): "does this wrapper hide harmful prompts among the
      harmless ones?";
    - negatives only: every positive of the split against the group's negatives
      (`reference` "split_positives"): "do these hard negatives look harmful?".
    `n` and `n_pos` count the rows actually compared. Groups come out sorted by name.
    """
    pos = _labels(y, split)
    s = _scores(scores, pos.size, split)
    names = np.asarray([str(g) for g in groups])
    if names.shape != pos.shape:
        raise DataError(
            f"split {split!r}: {names.size} group labels for {pos.size} rows; "
            "give one group label per row"
        )
    out: list[dict[str, object]] = []
    for name in np.unique(names):
        in_group = names == name
        n_pos_group = int((in_group & pos).sum())
        if 0 < n_pos_group < int(in_group.sum()):
            rows, reference = in_group, "group"
        elif n_pos_group > 0:
            rows, reference = in_group | ~pos, "split_negatives"
        else:
            rows, reference = in_group | pos, "split_positives"
        out.append(
            {
                "group": str(name),
                "auroc": auroc(pos[rows], s[rows], split=split),
                "n": int(rows.sum()),
                "n_pos": int((rows & pos).sum()),
                "reference": reference,
            }
        )
    return out
