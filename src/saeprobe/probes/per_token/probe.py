"""A per-token probe: an aggregation head over linear per-token projections, with its weight
decay and training length chosen by grouped CV on the training split.

`fit(tokens_train, y_train, base_id_train)`:
1. Grouped folds of the training prompts (`cv.group_folds`: no base prompt straddles folds).
2. One model per (weight decay, fold), all trained together for up to `max_epochs`, each on
   its fold's training prompts with that fold's standardisation statistics, scored after every
   epoch on its held-out prompts. Training stops `patience` epochs after the best mean held-out
   log-loss over folds last improved (early stopping).
3. The (weight decay, epoch count) with the lowest mean held-out log-loss wins (ties: the
   stronger decay, the fewer epochs). Log-loss, because held-out AUROC saturates on this task.
4. Refit on every training prompt with that weight decay for that many epochs, once per train
   seed (the initialisation). The probe scores with the first seed's model; the others measure
   how much the initialisation moves the result (`seed_decision_functions`).

Only `fit` receives labels, and it receives the training split alone: validation and OOD
prompts are only ever scored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from saeprobe.errors import ConfigError, DataError
from saeprobe.probes import cv
from saeprobe.probes.per_token.heads import PER_TOKEN_PROBES, make_head
from saeprobe.probes.per_token.tokens import TokenFeatures
from saeprobe.probes.per_token.train import FittedModels, fit_models, score_models, token_statistics

__all__ = ["PerTokenProbe", "PerTokenSettings"]


class PerTokenSettings(BaseModel):
    """Architecture and training settings shared by every per-token probe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(5.0, gt=0, description="softmax probe temperature tau")
    attention_heads: int = Field(1, ge=1, description="attention probe heads H")
    multimax_heads: int = Field(4, ge=1, description="multimax probe heads H")
    ema_alpha: float = Field(0.5, gt=0, le=1, description="ema probe smoothing alpha")
    window: int = Field(10, ge=1, description="rolling_mean window T, in tokens")
    weight_decays: list[float] = Field(
        default_factory=lambda: [1.0, 0.1, 0.01],
        min_length=1,
        description="AdamW weight decays searched by grouped CV",
    )
    lr: float = Field(0.01, gt=0, description="AdamW learning rate")
    batch_size: int = Field(32, ge=1, description="prompts per minibatch")
    max_epochs: int = Field(30, ge=1, description="epochs before early stopping must stop")
    patience: int = Field(4, ge=1, description="epochs without CV improvement before stopping")
    n_splits: int = Field(cv.DEFAULT_N_SPLITS, ge=2, description="grouped CV folds")
    train_seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2],
        min_length=1,
        description="initialisations refit on all of train; the first one is reported",
    )
    threads: int | None = Field(
        1,
        ge=1,
        description="torch threads while fitting and scoring; null: torch's default. These "
        "are many small operations, which extra threads slow down badly on a loaded machine "
        "(15x slower with 2 threads than 1 on a shared 2-core box)",
    )

    @field_validator("weight_decays")
    @classmethod
    def _non_negative(cls, v: list[float]) -> list[float]:
        if any(w < 0 for w in v):
            raise ValueError(f"weight decays {v} must be >= 0")
        return sorted(set(v), reverse=True)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


class PerTokenProbe:
    """`fit(tokens_train, y_train, base_id_train)`, then `decision_function(tokens)`."""

    def __init__(
        self, kind: str, settings: PerTokenSettings | None = None, *, seed: int = 0
    ) -> None:
        if kind not in PER_TOKEN_PROBES:
            raise ConfigError(f"unknown per-token probe {kind!r}; use one of {PER_TOKEN_PROBES}")
        self.kind = kind
        self.name = kind
        self.settings = settings or PerTokenSettings()
        self.seed = seed  # fold shuffle and minibatch order
        s = self.settings
        self.head = make_head(
            kind,
            attention_heads=s.attention_heads,
            multimax_heads=s.multimax_heads,
            temperature=s.temperature,
            alpha=s.ema_alpha,
            window=s.window,
        )

    def _check(self, tokens: TokenFeatures, y: np.ndarray) -> np.ndarray:
        if not isinstance(tokens, TokenFeatures):
            raise DataError(
                f"{self.kind} probe needs per-token activations (TokenFeatures), got "
                f"{type(tokens).__name__}; extract features with per-token activations"
            )
        y = np.asarray(y)
        if y.shape != (tokens.n_prompts,) or not np.isin(y, (0, 1)).all():
            raise DataError(
                f"{self.kind} probe: {y.shape} labels for {tokens.n_prompts} prompts; pass one "
                "0/1 label per training prompt"
            )
        if np.unique(y).size < 2:
            raise DataError(
                f"{self.kind} probe: the training split has one class only; add the other"
            )
        tokens.check_finite(f"{self.kind} probe input")
        longest = int(tokens.lengths.max())
        if self.kind == "rolling_mean" and self.settings.window > longest:
            raise DataError(
                f"rolling_mean window {self.settings.window} is longer than every training "
                f"prompt (the longest has {longest} tokens); lower per_token.window"
            )
        return y.astype(int)

    def fit(
        self, tokens: TokenFeatures, y: np.ndarray, groups: Sequence[object] | np.ndarray
    ) -> PerTokenProbe:
        with torch_threads(self.settings.threads):
            return self._fit(tokens, y, groups)

    def _fit(
        self, tokens: TokenFeatures, y: np.ndarray, groups: Sequence[object] | np.ndarray
    ) -> PerTokenProbe:
        start = time.perf_counter()
        y = self._check(tokens, y)
        s = self.settings
        folds = [
            (tr, te)
            for tr, te in cv.group_folds(y, groups, s.n_splits, self.seed)
            if np.unique(y[tr]).size == 2 and np.unique(y[te]).size == 2
        ]
        if not folds:
            raise DataError(
                "no CV fold of the training split holds both classes in its training and "
                "held-out parts; add base prompts of both classes to the training split"
            )
        n, n_folds = tokens.n_prompts, len(folds)
        fold_train = np.zeros((n_folds, n), dtype=bool)
        for f, (tr, _) in enumerate(folds):
            fold_train[f, tr] = True
        decays = np.asarray(s.weight_decays, dtype=np.float64)
        # Columns: weight decay major, fold minor.
        col_fold = np.tile(np.arange(n_folds), decays.size)
        col_decay = np.repeat(np.arange(decays.size), n_folds)
        mean, std = token_statistics(tokens, fold_train)
        search = fit_models(
            tokens,
            y,
            self.head,
            train_mask=fold_train[col_fold],
            mean=mean[col_fold],
            std=std[col_fold],
            weight_decay=decays[col_decay],
            init_seeds=[_seed(s.train_seeds[0], 1 + c) for c in range(col_fold.size)],
            epochs=s.max_epochs,
            lr=s.lr,
            batch_size=s.batch_size,
            order_seed=self.seed,
            held_out_mask=~fold_train[col_fold],
            candidate=col_decay,
            patience=s.patience,
        )
        mean_loss = np.stack(
            [search.held_out_loss[:, col_decay == g].mean(axis=1) for g in range(decays.size)],
            axis=1,
        )  # [epochs, decays]
        mean_auroc = np.stack(
            [
                np.nanmean(search.held_out_auroc[:, col_decay == g], axis=1)
                for g in range(decays.size)
            ],
            axis=1,
        )
        epoch, g = np.unravel_index(int(np.argmin(mean_loss)), mean_loss.shape)
        self.weight_decay_ = float(decays[g])
        self.epochs_ = int(epoch) + 1
        all_mean, all_std = token_statistics(tokens, np.ones((1, n), dtype=bool))
        n_seeds = len(s.train_seeds)
        self.models_: FittedModels = fit_models(
            tokens,
            y,
            self.head,
            train_mask=np.ones((n_seeds, n), dtype=bool),
            mean=all_mean.expand(n_seeds, -1),
            std=all_std.expand(n_seeds, -1),
            weight_decay=np.full(n_seeds, self.weight_decay_),
            init_seeds=[_seed(t) for t in s.train_seeds],
            epochs=self.epochs_,
            lr=s.lr,
            batch_size=s.batch_size,
            order_seed=self.seed,
        )
        self.width_ = tokens.width
        self.cv_ = {
            "cv_weight_decays": decays.tolist(),
            "cv_log_loss": mean_loss.tolist(),
            "cv_auroc": mean_auroc.tolist(),
            "cv_folds": n_folds,
            "cv_epochs_run": int(search.epochs_run),
            "cv_best_log_loss": float(mean_loss[epoch, g]),
            "cv_best_auroc": float(mean_auroc[epoch, g]),
        }
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _scores(self, tokens: TokenFeatures) -> np.ndarray:
        if not isinstance(tokens, TokenFeatures):
            raise DataError(
                f"{self.kind} probe scores per-token activations (TokenFeatures), got "
                f"{type(tokens).__name__}; extract features with per-token activations"
            )
        if tokens.width != self.width_:
            raise DataError(
                f"{self.kind} probe was fitted on {self.width_}-wide token vectors but got "
                f"{tokens.width}; score the same features it was trained on"
            )
        with torch_threads(self.settings.threads):
            return score_models(self.models_, tokens)

    def decision_function(self, tokens: TokenFeatures) -> np.ndarray:
        """One score per prompt, from the first train seed's model."""
        return self._scores(tokens)[:, 0]

    def seed_decision_functions(self, tokens: TokenFeatures) -> np.ndarray:
        """[n_train_seeds, n_prompts]: every train seed's scores."""
        return self._scores(tokens).T

    def info(self) -> dict[str, Any]:
        s = self.settings
        architecture: dict[str, Any] = {
            "softmax": {"temperature": s.temperature},
            "attention": {"heads": s.attention_heads},
            "multimax": {"heads": s.multimax_heads},
            "ema": {"alpha": s.ema_alpha},
            "rolling_mean": {"window": s.window},
        }.get(self.kind, {})
        return {
            **architecture,
            "weight_decay": self.weight_decay_,
            "epochs": self.epochs_,
            "train_seeds": list(s.train_seeds),
            "lr": s.lr,
            "batch_size": s.batch_size,
            "n_params": int(self.width_ * self.head.n_projections + 1),
            **self.cv_,
        }
