"""The shared classifier: L2 logistic regression on standardised features, C by grouped CV.

The dense, reconstruction, k-sparse and random-latent probes all use this one classifier, so a
difference between them comes from their features, not from a differently tuned model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from saeprobe.errors import ConfigError, DataError
from saeprobe.probes import cv

__all__ = ["StandardizedLogistic", "check_fit_inputs"]


def check_scoring_width(z: np.ndarray, n_latents: int, who: str) -> np.ndarray:
    """`z` as an array, or a one-line error if it is not [n, n_latents] (another SAE's latents)."""
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[1] != n_latents:
        raise DataError(
            f"{who} was fitted on {n_latents} latents but got shape {z.shape}; score latents of "
            "the same SAE"
        )
    return z


def check_fit_inputs(x: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Float matrix and 0/1 labels with matching rows and both classes, or DataError."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.size:
        raise DataError(
            f"{what}: features {x.shape} and labels {y.shape} do not match; pass X [n, d] "
            "and y [n] from the training split"
        )
    if not np.isin(y, (0, 1)).all():
        raise DataError(f"{what}: labels must be 0 or 1; map the classes to 0/1")
    if np.unique(y).size < 2:
        raise DataError(
            f"{what}: the training split has one class only; add examples of the other class"
        )
    return x, y.astype(int)


class StandardizedLogistic:
    """Standardise with training statistics, then L2 logistic regression.

    `c=None` chooses C from `cs` by `cv.select_c` (grouped CV on the rows given to `fit`,
    which must be the training split, picked by `criterion`, see `cv.C_CRITERIA`); a number
    fixes C and skips CV. `fit` takes one split
    only, so nothing from validation or OOD data can reach the scaler or the choice of C.
    """

    def __init__(
        self,
        *,
        c: float | None = None,
        cs: Sequence[float] = cv.DEFAULT_CS,
        n_splits: int = cv.DEFAULT_N_SPLITS,
        seed: int = 0,
        criterion: str = cv.DEFAULT_C_CRITERION,
    ) -> None:
        if c is not None and c <= 0:
            raise ConfigError(f"c={c} must be positive; pass e.g. 1.0 or None to use CV")
        if criterion not in cv.C_CRITERIA:
            raise ConfigError(f"unknown C criterion {criterion!r}; use one of {cv.C_CRITERIA}")
        self.c = c
        self.cs = tuple(cs)
        self.n_splits = n_splits
        self.seed = seed
        self.criterion = criterion

    def fit(
        self, x: np.ndarray, y: np.ndarray, groups: Sequence[object] | np.ndarray | None = None
    ) -> StandardizedLogistic:
        x, y = check_fit_inputs(x, y, type(self).__name__)
        x = x.astype(np.float64, copy=False)
        if self.c is None:
            if groups is None:
                raise DataError(
                    "choosing C by grouped CV needs the training base_id of every row; "
                    "pass groups=base_id['train'] (or fix c)"
                )
            self.cv_ = cv.select_c(
                x,
                y,
                groups,
                cs=self.cs,
                n_splits=self.n_splits,
                seed=self.seed,
                criterion=self.criterion,
            )
            self.c_ = self.cv_.c
        else:
            self.cv_ = None
            self.c_ = float(self.c)
        self.mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0  # a constant training column stays constant (zero) after scaling
        self.scale_ = scale
        model = cv.new_logistic(self.c_)
        cv.fit_quietly(model, (x - self.mean_) / self.scale_, y)
        self.coef_ = model.coef_[0].copy()
        self.intercept_ = float(model.intercept_[0])
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Logit of the positive class for each row of `x`."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.coef_.size:
            raise DataError(
                f"{type(self).__name__} was fitted on {self.coef_.size} features but got "
                f"shape {x.shape}; score the same features the probe was trained on"
            )
        return ((x - self.mean_) / self.scale_) @ self.coef_ + self.intercept_

    def info(self) -> dict[str, Any]:
        """Fitted details worth recording: chosen C and the CV curves."""
        out: dict[str, Any] = {"c": self.c_}
        if self.cv_ is not None:
            out["c_criterion"] = self.cv_.criterion
            out["cv_cs"] = list(self.cv_.cs)
            out["cv_auroc"] = list(self.cv_.mean_auroc)
            out["cv_log_loss"] = list(self.cv_.mean_log_loss)
            out["cv_folds"] = self.cv_.n_folds_scored
            out["c_at_grid_edge"] = self.cv_.at_edge
        return out
