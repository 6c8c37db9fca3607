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

__all__ = [
    "C_CRITERIA",
    "DEFAULT_CS",
    "DEFAULT_C_CRITERION",
    "DEFAULT_N_SPLITS",
    "CVResult",
    "choose_c",
    "group_folds",
    "log_loss",
    "new_logistic",
    "select_c",
]

# Inverse L2 strengths for features standardised to unit variance. sklearn's objective is
# 0.5*|w|^2 + C * sum(log-loss). At the small end (C=1e-5 with ~2,400 rows per fold) the weights
# shrink towards the standardised class-mean difference, the diff-of-means limit; at the large
# end C=100 is practically unregularised, so the study's "refit without regularisation" is
# inside the grid. `CVResult.at_edge` flags a choice on either end of the grid.
DEFAULT_CS: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
DEFAULT_N_SPLITS = 5
_MAX_ITER = 1000
# How CV picks C. Harmful intent is easy in distribution, so the mean CV AUROC of most Cs is
# 1.0 (or equal to 4 decimals) and "auroc" then takes the most regularised C by its tie rule;
# the held-out log-loss still separates them (it rewards confident correct margins), so the
# default breaks AUROC ties by it. "log_loss" chooses by the log-loss alone.
C_CRITERIA = ("auroc_then_log_loss", "auroc", "log_loss")
DEFAULT_C_CRITERION = "auroc_then_log_loss"


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


def log_loss(y: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy of logits, computed stably (no probability clipping)."""
    y = np.asarray(y).astype(bool)
    z = np.asarray(logits, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, np.where(y, -z, z))))


@dataclass(frozen=True)
class CVResult:
    """The chosen C and the mean held-out-fold AUROC and log-loss of every candidate."""

    c: float
    cs: tuple[float, ...]
    mean_auroc: tuple[float, ...]
    n_folds_scored: int
    mean_log_loss: tuple[float, ...] = ()
    criterion: str = DEFAULT_C_CRITERION

    @property
    def at_edge(self) -> bool:
        """True when C is the grid's smallest or largest value (the optimum may lie beyond)."""
        return len(self.cs) > 1 and self.c in (self.cs[0], self.cs[-1])


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean = train.mean(axis=0)
    scale = train.std(axis=0)
    scale[scale == 0] = 1.0
    return [(a - mean) / scale for a in (train, *others)]


def choose_c(mean_auroc: Sequence[float], mean_log_loss: Sequence[float], criterion: str) -> int:
    """Index of the chosen C in a grid sorted ascending (see `C_CRITERIA`).

    "auroc": the highest mean AUROC, ties to the smallest C (strongest regularisation).
    "auroc_then_log_loss": among the Cs with the highest mean AUROC (equal to 1e-12), the
    lowest mean log-loss; remaining ties to the smallest C. "log_loss": the lowest mean
    log-loss, ties to the smallest C.
    """
    if criterion not in C_CRITERIA:
        raise ConfigError(f"unknown C criterion {criterion!r}; use one of {C_CRITERIA}")
    auc = np.asarray(mean_auroc, dtype=np.float64)
    loss = np.asarray(mean_log_loss, dtype=np.float64)
    if criterion == "auroc":
        return int(np.flatnonzero(auc == auc.max())[0])
    candidates = np.arange(auc.size)
    if criterion == "auroc_then_log_loss":
        candidates = np.flatnonzero(auc >= auc.max() - 1e-12)
    best = loss[candidates].min()
    return int(candidates[np.flatnonzero(loss[candidates] == best)[0]])


def select_c(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | Sequence[object],
    *,
    cs: Sequence[float] = DEFAULT_CS,
    n_splits: int = DEFAULT_N_SPLITS,
    seed: int = 0,
    criterion: str = DEFAULT_C_CRITERION,
) -> CVResult:
    """Pick C by grouped k-fold CV on (x, y): the training split and nothing else.

    Each fold standardises with its own training rows' statistics (the held-out fold must not
    leak into the scaling either), then fits the C grid from strongest to weakest
    regularisation, warm-starting each fit from the previous solution. Each C gets the mean
    over folds of the held-out AUROC and log-loss; folds whose held-out or training part lacks
    a class are skipped. `criterion` picks C from those curves (`choose_c`).
    """
    cs_sorted = tuple(sorted(float(c) for c in cs))
    if not cs_sorted or cs_sorted[0] <= 0:
        raise ConfigError(f"cs={tuple(cs)} must be non-empty and positive; pass e.g. {DEFAULT_CS}")
    if criterion not in C_CRITERIA:
        raise ConfigError(f"unknown C criterion {criterion!r}; use one of {C_CRITERIA}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(int)
    totals = np.zeros(len(cs_sorted))
    losses = np.zeros(len(cs_sorted))
    scored = 0
    for tr, te in group_folds(y, groups, n_splits, seed):
        if np.unique(y[tr]).size < 2 or np.unique(y[te]).size < 2:
            continue
        x_tr, x_te = standardise(x[tr], x[te])
        model = new_logistic(cs_sorted[0])
        for j, c in enumerate(cs_sorted):
            model.set_params(C=c)
            fit_quietly(model, x_tr, y[tr])
            held_out = model.decision_function(x_te)
            totals[j] += auroc(y[te], held_out, split="cv fold")
            losses[j] += log_loss(y[te], held_out)
        scored += 1
    if scored == 0:
        raise DataError(
            "no cross-validation fold of the training split has both classes in its training "
            "and held-out parts; add base prompts of both classes to the training split"
        )
    mean = totals / scored
    mean_loss = losses / scored
    best = choose_c(mean, mean_loss, criterion)
    return CVResult(
        c=cs_sorted[best],
        cs=cs_sorted,
        mean_auroc=tuple(float(v) for v in mean),
        n_folds_scored=scored,
        mean_log_loss=tuple(float(v) for v in mean_loss),
        criterion=criterion,
    )
