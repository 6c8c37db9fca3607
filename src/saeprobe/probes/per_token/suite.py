"""Fit every per-token probe once, on the residual and on each SAE's selected latents.

The probe suite runs once per pooling, but per-token probes read the tokens, not a pooled
vector, so they are fitted once (`fit_per_token_probes`) and their scores handed to every
pooling's suite, which scores them with the same bootstrap resamples as its pooled probes (so
comparisons between them are paired).

SAE-latent versions ("SAE + better aggregation"): per SAE, k latents are chosen on the
training split by a selection of `saeprobe.probes.selection` applied to each latent's max over
the prompt's token rows (the rows these probes read), then every per-token probe is fitted on
the per-token values of those k latents.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from saeprobe.errors import ConfigError, DataError
from saeprobe.probes.per_token.heads import PER_TOKEN_PROBES
from saeprobe.probes.per_token.probe import PerTokenProbe, PerTokenSettings, fit_many
from saeprobe.probes.per_token.tokens import TokenFeatures
from saeprobe.probes.selection import DEFAULT_L1_PRESCREEN, SELECTIONS, select_latents

__all__ = ["SaeTokenLatents", "ScoredProbe", "TokenInputs", "fit_per_token_probes"]


@dataclass(frozen=True)
class SaeTokenLatents:
    """One SAE's per-token latents, as the per-token suite needs them.

    pooled_train: [n_train, d_sae] each latent's max over a training prompt's token rows (what
    the latent selection ranks); columns(latents) -> {split: TokenFeatures} of those latents'
    per-token values (float32), for every split.
    """

    pooled_train: np.ndarray
    columns: Callable[[np.ndarray], Mapping[str, TokenFeatures]]


@dataclass(frozen=True)
class TokenInputs:
    """Per-token residual rows per split, and optionally per-SAE latents (`SaeTokenLatents`)."""

    dense: Mapping[str, TokenFeatures]
    saes: Mapping[str, SaeTokenLatents] = field(default_factory=dict)


@dataclass
class ScoredProbe:
    """A probe fitted outside the pooled suite, with its scores per split.

    key: {probe, sae, k, selection}; scores: split -> [n] scores of the reported model;
    seed_scores: split -> [n_seeds, n] scores of every train seed; info: fitted details.
    """

    key: dict[str, Any]
    scores: dict[str, np.ndarray]
    seed_scores: dict[str, np.ndarray]
    info: dict[str, Any]
    seconds: float


def _check(
    inputs: TokenInputs, y_train: np.ndarray, probes: Sequence[str], settings: PerTokenSettings
) -> None:
    unknown = [p for p in probes if p not in PER_TOKEN_PROBES]
    if unknown:
        raise ConfigError(
            f"unknown per-token probe(s) {unknown}; use a subset of {PER_TOKEN_PROBES}"
        )
    if "train" not in inputs.dense:
        raise DataError("per-token inputs have no 'train' split; probes are fitted on it")
    if inputs.dense["train"].n_prompts != np.size(y_train):
        raise DataError(
            f"per-token train split has {inputs.dense['train'].n_prompts} prompts for "
            f"{np.size(y_train)} labels; build both from the same prompts"
        )
    longest = max(int(t.lengths.max()) for t in inputs.dense.values())
    if "rolling_mean" in probes and settings.window > longest:
        raise DataError(
            f"rolling_mean window {settings.window} is longer than every prompt (the longest "
            f"has {longest} tokens); lower per_token.window"
        )


def _as_float32(tokens: TokenFeatures) -> TokenFeatures:
    if tokens.values.dtype == np.float32:
        return tokens
    return TokenFeatures(tokens.values.astype(np.float32), tokens.offsets)


def _scored(
    probe: PerTokenProbe, key: dict[str, Any], per_split: Mapping[str, TokenFeatures], info
) -> ScoredProbe:
    start = time.perf_counter()
    seed_scores = {s: probe.seed_decision_functions(t) for s, t in per_split.items()}
    return ScoredProbe(
        key={**key, "probe": probe.kind},
        scores={s: v[0] for s, v in seed_scores.items()},
        seed_scores=seed_scores,
        info={**probe.info(), **info},
        seconds=probe.fit_seconds_ + time.perf_counter() - start,
    )


def fit_per_token_probes(
    inputs: TokenInputs,
    y_train: np.ndarray,
    groups_train: Sequence[object],
    *,
    probes: Sequence[str] = PER_TOKEN_PROBES,
    settings: PerTokenSettings | None = None,
    sae_k: int = 20,
    sae_selection: str = "l1",
    l1_prescreen: int = DEFAULT_L1_PRESCREEN,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> list[ScoredProbe]:
    """Every per-token probe on the residual, then on each SAE's `sae_k` selected latents.

    Labels and base prompts of the training split are the only labels used; every other split
    is only scored. `seed` shuffles the CV folds and the minibatches.
    """
    settings = settings or PerTokenSettings()
    if sae_selection not in SELECTIONS:
        raise ConfigError(f"unknown selection {sae_selection!r}; use one of {SELECTIONS}")
    y_train = np.asarray(y_train).astype(int)
    _check(inputs, y_train, probes, settings)
    out: list[ScoredProbe] = []
    dense = {s: t for s, t in inputs.dense.items()}
    dense["train"] = _as_float32(dense["train"])
    base = {"sae": None, "k": None, "selection": None}
    for kind in probes:
        probe = PerTokenProbe(kind, settings, seed=seed).fit(dense["train"], y_train, groups_train)
        out.append(_scored(probe, base, dense, {}))
        if log:
            log(f"per-token {kind}: {out[-1].seconds:.1f} s")
    if not inputs.saes:
        return out
    per_sae, keys, infos = [], [], []
    for name, sae in inputs.saes.items():
        latents = select_latents(
            sae.pooled_train,
            y_train,
            [sae_k],
            sae_selection,
            l1_prescreen=l1_prescreen,
            sae=f"SAE {name!r}",
        )[sae_k]
        per_split = dict(sae.columns(latents))
        per_split["train"] = _as_float32(per_split["train"])
        per_sae.append(per_split)
        keys.append({"sae": name, "k": sae_k, "selection": sae_selection})
        infos.append({"latents": [int(i) for i in latents]})
    for kind in probes:
        # Every SAE's version of this probe in one training pass (`fit_many`).
        fitted = [PerTokenProbe(kind, settings, seed=seed) for _ in per_sae]
        fit_many(fitted, [p["train"] for p in per_sae], y_train, groups_train)
        for probe, per_split, key, info in zip(fitted, per_sae, keys, infos, strict=True):
            out.append(_scored(probe, key, per_split, info))
        if log:
            log(
                f"per-token {kind} on {len(per_sae)} SAEs' latents: "
                f"{sum(o.seconds for o in out[-len(per_sae) :]):.1f} s"
            )
    return out
