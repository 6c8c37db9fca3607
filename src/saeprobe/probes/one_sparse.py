"""P2, the 1-sparse probe: the single SAE latent with the best training AUROC.

A latent can predict the label negatively (it fires on harmless prompts), so each latent is
scored by max(AUROC, 1 - AUROC) and the chosen one carries a sign: score = sign * z[latent].
A one-feature logistic regression is monotone in its feature, so this score has exactly the
AUROC such a regression would have; no classifier is fitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from saeprobe.errors import DataError
from saeprobe.probes.linear import check_fit_inputs, check_scoring_width
from saeprobe.probes.metrics import auroc_columns

__all__ = ["OneSparseProbe"]


class OneSparseProbe:
    """`fit(Z_train, y_train)` picks `latent_` and `sign_`; `decision_function(Z)` scores."""

    name = "one_sparse"

    def fit(
        self, z: np.ndarray, y: np.ndarray, groups: Sequence[object] | np.ndarray | None = None
    ) -> OneSparseProbe:
        """`groups` is accepted for a uniform probe interface and ignored."""
        z, y = check_fit_inputs(z, y, "OneSparseProbe")
        # Latents that never fire on train are constant there (AUROC exactly 0.5): skip them.
        firing = np.flatnonzero((z != 0).any(axis=0))
        if firing.size == 0:
            raise DataError(
                "no SAE latent fires on the training split; check that Z holds the SAE "
                "latents of the training prompts"
            )
        aucs = auroc_columns(z[:, firing], y, split="train")
        strength = np.maximum(aucs, 1.0 - aucs)
        best = int(np.argmax(strength))  # first maximum: lowest latent index on ties
        self.latent_ = int(firing[best])
        # Positive direction unless the latent is strictly anti-predictive.
        self.sign_ = 1 if aucs[best] >= 0.5 else -1
        self.train_auroc_ = float(strength[best])
        self.n_latents_ = int(z.shape[1])
        return self

    @property
    def latents_(self) -> np.ndarray:
        return np.array([self.latent_])

    def decision_function(self, z: np.ndarray) -> np.ndarray:
        z = check_scoring_width(z, self.n_latents_, "OneSparseProbe")
        return self.sign_ * z[:, self.latent_].astype(np.float64)

    def info(self) -> dict[str, Any]:
        return {"latents": [self.latent_], "sign": self.sign_, "train_auroc": self.train_auroc_}
