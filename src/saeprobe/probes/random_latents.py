"""The random-latent control: k latents drawn at random, same classifier as the k-sparse probe.

Latents are drawn without replacement among those that fire on the training split (a latent
that never fires is a constant column and would make the control artificially weak). If a
k-sparse probe barely beats this control, its selection is not doing much.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from saeprobe.errors import DataError
from saeprobe.probes import cv
from saeprobe.probes.k_sparse import KSparseProbe

__all__ = ["RandomLatentsProbe"]


class RandomLatentsProbe(KSparseProbe):
    """k random firing latents (seeded by `latent_seed`, default `seed`), then the k-sparse fit."""

    name = "random_latents"

    def __init__(
        self,
        k: int,
        *,
        latent_seed: int | Sequence[int] | None = None,
        c: float | None = None,
        cs: Sequence[float] = cv.DEFAULT_CS,
        n_splits: int = cv.DEFAULT_N_SPLITS,
        seed: int = 0,
        criterion: str = cv.DEFAULT_C_CRITERION,
    ) -> None:
        super().__init__(k, "random", c=c, cs=cs, n_splits=n_splits, seed=seed, criterion=criterion)
        self.latent_seed = seed if latent_seed is None else latent_seed

    def _select(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        firing = np.flatnonzero((z != 0).any(axis=0))
        if self.k > firing.size:
            raise DataError(
                f"k={self.k} exceeds the {firing.size} latents that fire on the training split; "
                f"use ks no larger than {firing.size}"
            )
        rng = np.random.default_rng(self.latent_seed)
        return np.sort(rng.choice(firing, size=self.k, replace=False))
