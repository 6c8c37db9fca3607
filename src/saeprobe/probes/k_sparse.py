"""P3, the k-sparse probe: k SAE latents chosen on train, then logistic regression on them.

Selection (`saeprobe.probes.selection`): `mean_diff`, `mean_diff_normalized` or `l1`, all on the
training split. The classifier on the k latents is the dense probe's: standardise with training
statistics, L2 logistic regression, C by grouped CV on train. The study refits "unregularised"
after L1 selection; our grid's top value (C=100 on standardised features) is practically that,
and CV takes it whenever weaker regularisation helps. Using one tuned classifier for every
probe means a dense vs sparse gap comes from the features, not from unequal tuning; pass `c`
to fix C instead (e.g. c=1e4 for the study's unregularised refit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from saeprobe.errors import ConfigError, DataError
from saeprobe.probes import cv
from saeprobe.probes.linear import StandardizedLogistic, check_fit_inputs, check_scoring_width
from saeprobe.probes.selection import DEFAULT_L1_PRESCREEN, SELECTIONS, select_latents

__all__ = ["KSparseProbe"]


class KSparseProbe:
    """`fit(Z_train, y_train, base_id_train)`, then `decision_function(Z)` on any split.

    `latents` skips selection (the suite selects once per SAE for all k and passes them in);
    otherwise `fit` selects k latents with `selection` from the rows it is given.
    """

    name = "k_sparse"

    def __init__(
        self,
        k: int,
        selection: str = "mean_diff",
        *,
        latents: Sequence[int] | np.ndarray | None = None,
        c: float | None = None,
        cs: Sequence[float] = cv.DEFAULT_CS,
        n_splits: int = cv.DEFAULT_N_SPLITS,
        seed: int = 0,
        l1_prescreen: int = DEFAULT_L1_PRESCREEN,
        criterion: str = cv.DEFAULT_C_CRITERION,
    ) -> None:
        self.k = k
        self.selection = selection
        self.latents = None if latents is None else np.asarray(latents, dtype=int)
        self.l1_prescreen = l1_prescreen
        self.classifier = StandardizedLogistic(
            c=c, cs=cs, n_splits=n_splits, seed=seed, criterion=criterion
        )

    def _select(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.selection not in SELECTIONS:
            raise ConfigError(f"unknown selection {self.selection!r}; use one of {SELECTIONS}")
        return select_latents(z, y, [self.k], self.selection, l1_prescreen=self.l1_prescreen)[
            self.k
        ]

    def fit(
        self, z: np.ndarray, y: np.ndarray, groups: Sequence[object] | np.ndarray | None = None
    ) -> KSparseProbe:
        z, y = check_fit_inputs(z, y, type(self).__name__)
        latents = self._select(z, y) if self.latents is None else self.latents
        if latents.size != self.k or np.unique(latents).size != latents.size:
            raise DataError(
                f"{type(self).__name__} needs {self.k} distinct latents, got {latents.size}; "
                "pass k distinct latent indices"
            )
        if latents.min() < 0 or latents.max() >= z.shape[1]:
            raise DataError(
                f"latent indices must lie in [0, {z.shape[1]}); pick latents of this SAE"
            )
        self.latents_ = latents
        self.n_latents_ = int(z.shape[1])
        self.classifier.fit(z[:, latents], y, groups)
        return self

    def decision_function(self, z: np.ndarray) -> np.ndarray:
        z = check_scoring_width(z, self.n_latents_, type(self).__name__)
        return self.classifier.decision_function(z[:, self.latents_])

    def info(self) -> dict[str, Any]:
        return {
            "latents": [int(i) for i in self.latents_],
            "coef": [float(w) for w in self.classifier.coef_],
            **self.classifier.info(),
        }
