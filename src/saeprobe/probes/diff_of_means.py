"""The difference-of-means probe: a zero-training baseline direction.

direction = mean(X | y=1) - mean(X | y=0) on the training split; score = X @ direction. No
standardisation and no hyperparameters, so there is nothing to tune and nothing to leak.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from saeprobe.errors import DataError
from saeprobe.probes.linear import check_fit_inputs

__all__ = ["DiffOfMeansProbe"]


class DiffOfMeansProbe:
    """`fit(X_train, y_train)`, then `decision_function(X)` = X @ (mean_pos - mean_neg)."""

    name = "diff_of_means"

    def fit(
        self, x: np.ndarray, y: np.ndarray, groups: Sequence[object] | np.ndarray | None = None
    ) -> DiffOfMeansProbe:
        """`groups` is accepted for a uniform probe interface and ignored."""
        x, y = check_fit_inputs(x, y, "DiffOfMeansProbe")
        pos = y.astype(bool)
        # Means in float64: float32 sums over thousands of rows lose digits.
        self.direction_ = x[pos].mean(axis=0, dtype=np.float64) - x[~pos].mean(
            axis=0, dtype=np.float64
        )
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.direction_.size:
            raise DataError(
                f"DiffOfMeansProbe was fitted on {self.direction_.size} features but got "
                f"shape {x.shape}; score the same features the probe was trained on"
            )
        return x.astype(np.float64, copy=False) @ self.direction_

    def info(self) -> dict[str, Any]:
        return {"direction_norm": float(np.linalg.norm(self.direction_))}
