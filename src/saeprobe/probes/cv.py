"""Choosing the regularisation strength C by cross-validation on the training split only.

Folds are grouped by base prompt (`base_id`): every transformation of one base prompt (its
jailbreak wrappers, its innocuous rewrites) lands in the same fold. Otherwise a fold could
score a wrapped prompt whose unwrapped twin it trained on, and CV would reward memorising the
base prompts rather than the concept. Folds are also stratified by label where the groups allow.

Only the training split ever reaches these functions (the probes' `fit` takes one split), so
validation and OOD data cannot influence C; `tests/probes` checks this with a spy.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold

from saeprobe.errors import ConfigError, DataError
from saeprobe.probes.metrics import auroc

__all__ = ["DEFAULT_CS", "DEFAULT_N_SPLITS", "CVResult", "group_folds", "new_logistic", "select_c"]

# Inverse L2 strengths for features standardised to unit variance. sklearn's objective is
# 0.5*|w|^2 + C * sum(log-loss). At the small end (C=1e-5 with ~2,400 rows per fold) the weights
# shrink towards the standardised class-mean difference, the diff-of-means limit; at the large
# end C=100 is practically unregularised, so the study's "refit without regularisation" is
# inside the grid. `CVResult.at_edge` flags a choice on either end of the grid.
DEFAULT_CS: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
DEFAULT_N_SPLITS = 5
_MAX_ITER = 1000


def new_logistic(c: float) -> LogisticRegression:
    """The L2 logistic regression used by every dense and k-sparse probe (lbfgs, warm-startable)."""
    return LogisticRegression(C=c, max_iter=_MAX_ITER, warm_start=True)


def fit_quietly(model: LogisticRegression, x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    """Fit, ignoring lbfgs convergence warnings.

    At large C on separable data the optimum is at infinity, so lbfgs stops at max_iter with a
    warning; the direction (all AUROC depends on) has long converged by then.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


def _group_codes(groups: np.ndarray | Sequence[object], n: int) -> np.ndarray:
    arr = np.asarray([str(g) for g in groups])
    if arr.shape != (n,):
        raise DataError(
            f"got {arr.size} base_id values for {n} training rows; pass one base_id per row"
        )
    return np.unique(arr, return_inverse=True)[1]


def group_folds(
    y: np.ndarray,
    groups: np.ndarray | Sequence[object],
    n_splits: int = DEFAULT_N_SPLITS,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, test_idx) pairs of a shuffled StratifiedGroupKFold; no group straddles folds.

    With fewer distinct groups than `n_splits`, one fold per group is used instead.
    """
    if n_splits < 2:
        raise ConfigError(f"n_splits={n_splits} must be at least 2; pass e.g. 5")
    y = np.asarray(y)
    codes = _group_codes(groups, y.size)
    n_groups = int(codes.max()) + 1 if codes.size else 0
    if n_groups < 2:
        raise DataError(
            f"the training split has {n_groups} distinct base_id value(s); grouped "
            "cross-validation needs at least 2: give each base prompt its own base_id"
        )
    splitter = StratifiedGroupKFold(
        n_splits=min(n_splits, n_groups), shuffle=True, random_state=seed
    )
    with warnings.catch_warnings():
        # "The least populated class has only N members": harmless, folds stay grouped.
        warnings.simplefilter("ignore", UserWarning)
        return [(tr, te) for tr, te in splitter.split(np.zeros(y.size), y, codes)]


@dataclass(frozen=True)
class CVResult:
    """The chosen C and the mean held-out-fold AUROC of every candidate."""

    c: float
    cs: tuple[float, ...]
    mean_auroc: tuple[float, ...]
    n_folds_scored: int

    @property
    def at_edge(self) -> bool:
        """True when C is the grid's smallest or largest value (the optimum may lie beyond)."""
        return len(self.cs) > 1 and self.c in (self.cs[0], self.cs[-1])


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean = train.mean(axis=0)
    scale = train.std(axis=0)
    scale[scale == 0] = 1.0
    return [(a - mean) / scale for a in (train, *others)]


def select_c(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | Sequence[object],
    *,
    cs: Sequence[float] = DEFAULT_CS,
    n_splits: int = DEFAULT_N_SPLITS,
    seed: int = 0,
) -> CVResult:
    """Pick C by grouped k-fold CV AUROC on (x, y): the training split and nothing else.

    Each fold standardises with its own training rows' statistics (the held-out fold must not
    leak into the scaling either), then fits the C grid from strongest to weakest
    regularisation, warm-starting each fit from the previous solution. The score is the mean
    over folds of the held-out AUROC; folds whose held-out or training part lacks a class are
    skipped. The highest mean wins; exact ties go to the smaller C (stronger regularisation).
    """
    cs_sorted = tuple(sorted(float(c) for c in cs))
    if not cs_sorted or cs_sorted[0] <= 0:
        raise ConfigError(f"cs={tuple(cs)} must be non-empty and positive; pass e.g. {DEFAULT_CS}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(int)
    totals = np.zeros(len(cs_sorted))
    scored = 0
    for tr, te in group_folds(y, groups, n_splits, seed):
        if np.unique(y[tr]).size < 2 or np.unique(y[te]).size < 2:
            continue
        x_tr, x_te = standardise(x[tr], x[te])
        model = new_logistic(cs_sorted[0])
        for j, c in enumerate(cs_sorted):
            model.set_params(C=c)
            fit_quietly(model, x_tr, y[tr])
            totals[j] += auroc(y[te], model.decision_function(x_te), split="cv fold")
        scored += 1
    if scored == 0:
        raise DataError(
            "no cross-validation fold of the training split has both classes in its training "
            "and held-out parts; add base prompts of both classes to the training split"
        )
    mean = totals / scored
    best = int(np.flatnonzero(mean == mean.max())[0])  # first = smallest C among ties
    return CVResult(
        c=cs_sorted[best],
        cs=cs_sorted,
        mean_auroc=tuple(float(v) for v in mean),
        n_folds_scored=scored,
    )
