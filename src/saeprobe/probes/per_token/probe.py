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
from saeprobe.probes.per_token.train import fit_models, score_models, token_statistics

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

    def check_input(self, tokens: TokenFeatures, y: np.ndarray) -> np.ndarray:
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
        fit_many([self], [tokens], y, groups)
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


def _fold_masks(probe: PerTokenProbe, y: np.ndarray, groups) -> np.ndarray:
    s = probe.settings
    folds = [
        (tr, te)
        for tr, te in cv.group_folds(y, groups, s.n_splits, probe.seed)
        if np.unique(y[tr]).size == 2 and np.unique(y[te]).size == 2
    ]
    if not folds:
        raise DataError(
            "no CV fold of the training split holds both classes in its training and "
            "held-out parts; add base prompts of both classes to the training split"
        )
    fold_train = np.zeros((len(folds), y.size), dtype=bool)
    for f, (tr, _) in enumerate(folds):
        fold_train[f, tr] = True
    return fold_train


def fit_many(
    probes: Sequence[PerTokenProbe],
    inputs: Sequence[TokenFeatures],
    y: np.ndarray,
    groups: Sequence[object] | np.ndarray,
) -> None:
    """Fit probes of one kind and settings, each on its own features of the same prompts (e.g.
    each SAE's selected latents), in one training pass: their inputs sit side by side and each
    model reads only its own columns, so the result equals fitting them one by one (the models
    never interact; early stopping and the chosen epoch count are per probe), at a fraction of
    the per-step overhead. The procedure is the module docstring's."""
    first = probes[0]
    if any(
        (p.kind, p.settings, p.seed) != (first.kind, first.settings, first.seed) for p in probes
    ):
        raise ConfigError("fit_many fits probes of one kind, settings and seed together")
    with torch_threads(first.settings.threads):
        _fit_many(probes, inputs, y, groups)


def _fit_many(probes, inputs, y, groups) -> None:
    start = time.perf_counter()
    first, s = probes[0], probes[0].settings
    y = first.check_input(inputs[0], y)
    for probe, tokens in zip(probes, inputs, strict=True):
        probe.check_input(tokens, y)
        if not np.array_equal(tokens.offsets, inputs[0].offsets):
            raise DataError("probes fitted together must read the same prompts' tokens")
    widths = [t.width for t in inputs]
    bounds = np.concatenate([[0], np.cumsum(widths)])
    if len(inputs) == 1:
        tokens = inputs[0]
    else:
        tokens = TokenFeatures(
            np.concatenate([t.values.astype(np.float32, copy=False) for t in inputs], axis=1),
            inputs[0].offsets,
        )
    n, n_probes = tokens.n_prompts, len(probes)
    fold_train = _fold_masks(first, y, groups)
    n_folds = fold_train.shape[0]
    decays = np.asarray(s.weight_decays, dtype=np.float64)
    n_decays = decays.size
    # Columns: probe, then weight decay, then fold.
    col_probe = np.repeat(np.arange(n_probes), n_decays * n_folds)
    col_decay = np.tile(np.repeat(np.arange(n_decays), n_folds), n_probes)
    col_fold = np.tile(np.arange(n_folds), n_probes * n_decays)
    reads = np.zeros((n_probes, tokens.width), dtype=bool)
    for j in range(n_probes):
        reads[j, bounds[j] : bounds[j + 1]] = True
    mean, std = token_statistics(tokens, fold_train)
    search = fit_models(
        tokens,
        y,
        first.head,
        train_mask=fold_train[col_fold],
        mean=mean[col_fold],
        std=std[col_fold],
        weight_decay=decays[col_decay],
        init_seeds=[_seed(s.train_seeds[0], 1 + c) for c in range(col_fold.size)],
        epochs=s.max_epochs,
        lr=s.lr,
        batch_size=s.batch_size,
        order_seed=first.seed,
        held_out_mask=~fold_train[col_fold],
        candidate=col_probe * n_decays + col_decay,
        problem=col_probe,
        patience=s.patience,
        input_mask=reads[col_probe] if n_probes > 1 else None,
    )
    chosen = []
    for j, probe in enumerate(probes):
        seen = search.stopped_at[j]
        mine = col_probe == j
        mean_loss = np.stack(
            [
                search.held_out_loss[:seen, mine & (col_decay == g)].mean(axis=1)
                for g in range(n_decays)
            ],
            axis=1,
        )  # [epochs, decays]
        mean_auroc = np.stack(
            [
                np.nanmean(search.held_out_auroc[:seen, mine & (col_decay == g)], axis=1)
                for g in range(n_decays)
            ],
            axis=1,
        )
        # Ties: the first epoch, then the strongest decay (decays are sorted descending).
        epoch, g = np.unravel_index(int(np.argmin(mean_loss)), mean_loss.shape)
        probe.weight_decay_ = float(decays[g])
        probe.epochs_ = int(epoch) + 1
        probe.cv_ = {
            "cv_weight_decays": decays.tolist(),
            "cv_log_loss": mean_loss.tolist(),
            "cv_auroc": mean_auroc.tolist(),
            "cv_folds": n_folds,
            "cv_epochs_run": int(seen),
            "cv_best_log_loss": float(mean_loss[epoch, g]),
            "cv_best_auroc": float(mean_auroc[epoch, g]),
        }
        chosen.append((probe.weight_decay_, probe.epochs_))
    all_mean, all_std = token_statistics(tokens, np.ones((1, n), dtype=bool))
    n_seeds = len(s.train_seeds)
    refit_probe = np.repeat(np.arange(n_probes), n_seeds)
    refit = fit_models(
        tokens,
        y,
        first.head,
        train_mask=np.ones((refit_probe.size, n), dtype=bool),
        mean=all_mean.expand(refit_probe.size, -1),
        std=all_std.expand(refit_probe.size, -1),
        weight_decay=np.array([chosen[j][0] for j in refit_probe]),
        init_seeds=[_seed(t) for t in s.train_seeds] * n_probes,
        epochs=max(e for _, e in chosen),
        lr=s.lr,
        batch_size=s.batch_size,
        order_seed=first.seed,
        input_mask=reads[refit_probe] if n_probes > 1 else None,
        snapshot_epochs=np.array([chosen[j][1] for j in refit_probe]),
    )
    seconds = (time.perf_counter() - start) / n_probes
    for j, probe in enumerate(probes):
        probe.models_ = refit.select(
            np.flatnonzero(refit_probe == j), np.arange(bounds[j], bounds[j + 1])
        )
        probe.width_ = widths[j]
        probe.fit_seconds_ = seconds
