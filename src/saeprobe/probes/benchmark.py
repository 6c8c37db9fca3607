"""`saeprobe probe`: the OOD harmful-intent benchmark, end to end.

dataset (built from its config, deterministic) -> SAEs (a sweep trained or reused, and/or SAE
directories; with `saes.seeds`, the sweep again under each extra seed) -> pooled features over
the user-turn tokens and, for the per-token probes, the per-token activations of those tokens
(one model pass for every SAE, cached on disk) -> the per-token probes, fitted once -> the
probe suite per pooling -> results.json / results.csv / summary.md / figures.

The first pooling's results are written to OUT; every further pooling to OUT/pooling-<name>/.
Per-token probes read tokens, not a pooled vector: their records (the same in every pooling's
directory, so that each file compares them with its own dense probe) carry pooling "tokens".
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from saeprobe.cache import cache_root
from saeprobe.data.prompts.build import build_dataset, load_dataset_dir
from saeprobe.data.prompts.config import resolve_dataset_config
from saeprobe.features.cache import (
    feature_key,
    load_features,
    load_tokens,
    save_features,
    save_tokens,
    tokens_path,
)
from saeprobe.features.extract import Features, extract_features
from saeprobe.features.pooling import Pooling
from saeprobe.features.tokens import TokenCache
from saeprobe.io_utils import atomic_write_json
from saeprobe.lm.models import DEFAULT_MODEL, load_model
from saeprobe.lm.precision import resolve_autocast
from saeprobe.probes import ProbeData, SaeFeatures, cv, run_probe_suite, write_results
from saeprobe.probes.per_token import PER_TOKEN_PROBES, PerTokenSettings, TokenFeatures
from saeprobe.probes.per_token.suite import SaeTokenLatents, TokenInputs, fit_per_token_probes
from saeprobe.probes.plots import plot_auroc_vs_k, plot_reconstruction_delta_table
from saeprobe.probes.selection import DEFAULT_L1_PRESCREEN, SELECTIONS
from saeprobe.sae.config import build_config
from saeprobe.sae.io import load_sae
from saeprobe.sweep.sources import SaeSources, resolve_saes
from saeprobe.train.trainer import resolve_device
from saeprobe.yaml_config import load_yaml_config

# SmolLM2's probing layer, chosen by `saeprobe scan-layers` on the training split (docs/probing.md).
DEFAULT_PROBE_LAYER = 15


class LinearConfig(BaseModel):
    """How every logistic-regression probe (dense, k-sparse refits, reconstruction, random
    control) picks its L2 strength C: grouped CV on the training split."""

    model_config = ConfigDict(extra="forbid")

    cs: list[float] = Field(default_factory=lambda: list(cv.DEFAULT_CS), min_length=1)
    n_splits: int = Field(cv.DEFAULT_N_SPLITS, ge=2, description="grouped CV folds")
    c_criterion: Literal["auroc_then_log_loss", "auroc", "log_loss"] = Field(
        cv.DEFAULT_C_CRITERION, description="how CV picks C; AUROC alone saturates here"
    )

    @field_validator("cs")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(c <= 0 for c in v):
            raise ValueError(f"every C must be positive, got {v}")
        return v


class L1Config(BaseModel):
    """The L1-then-refit selection of the k-sparse probe (its refit uses `linear`)."""

    model_config = ConfigDict(extra="forbid")

    prescreen: int = Field(
        DEFAULT_L1_PRESCREEN,
        ge=1,
        description="latents (by standardised mean difference) the L1 path starts from",
    )
    refit_c: float | None = Field(
        None,
        gt=0,
        description="fixed C of the refit on the selected latents (k-sparse and random "
        "control); null: chosen by grouped CV over linear.cs. 1e4 is the study's "
        "unregularised refit",
    )


class PerTokenConfig(PerTokenSettings):
    """The per-token probes (`saeprobe.probes.per_token`) and their SAE-latent versions."""

    probes: list[Literal[PER_TOKEN_PROBES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(PER_TOKEN_PROBES),
        description="per-token probes to fit; [] turns them (and the per-token cache) off",
    )
    sae_latents: bool = Field(True, description="also fit them on each SAE's selected latents")
    sae_k: int = Field(20, ge=1, description="latents per SAE for the SAE-latent versions")
    sae_selection: Literal[SELECTIONS] = Field(  # type: ignore[valid-type]
        "l1", description="how those latents are chosen on the training split"
    )


class ProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Path | dict[str, Any] | None = Field(
        None, description="dataset config: a YAML path or an inline mapping; none = offline default"
    )
    model: str = DEFAULT_MODEL
    layer: int = Field(DEFAULT_PROBE_LAYER, ge=0, description="default: SmolLM2's scanned layer")
    context: int = Field(512, ge=8, description="tokens per prompt; longer ones lose their middle")
    batch_size: int = Field(16, gt=0)
    poolings: list[Pooling] = Field(default_factory=lambda: [Pooling()], min_length=1)
    saes: SaeSources = Field(default_factory=SaeSources)
    ks: list[int] = Field(default_factory=lambda: [1, 2, 5, 10, 20, 50], min_length=1)
    selections: list[str] = Field(
        default_factory=lambda: ["mean_diff", "mean_diff_normalized", "l1"], min_length=1
    )
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    n_bootstrap: int = Field(1000, ge=1)
    bootstrap_unit: Literal["base_id", "row"] = Field(
        "base_id", description="resample base prompts (cluster bootstrap) or rows"
    )
    device: str = "auto"
    autocast: bool | None = Field(
        None, description="bf16 autocast for the model pass; null: where bf16 is fast"
    )
    linear: LinearConfig = Field(default_factory=LinearConfig)
    l1: L1Config = Field(default_factory=L1Config)
    per_token: PerTokenConfig = Field(default_factory=PerTokenConfig)


def load_probe_config(path: str | Path) -> ProbeConfig:
    return build_config(ProbeConfig, load_yaml_config(path), what=f"probe config {path}")


def _features(cfg: ProbeConfig, lm, texts, sae_dirs, progress, log) -> Features:
    """Pooled features, and per-token activations when per-token probes are on: read from the
    cache, or extracted in one model pass and cached (both files share one key)."""
    use_autocast = resolve_autocast(cfg.autocast, next(lm.model.parameters()).device)
    key = feature_key(lm, cfg.layer, cfg.context, cfg.poolings, texts, sae_dirs, use_autocast)
    path = cache_root() / "features" / f"{key}.safetensors"
    per_token = bool(cfg.per_token.probes)
    if path.exists() and (not per_token or tokens_path(path).exists()):
        log(f"features: cached ({path})")
        feats = load_features(path)
        if per_token:
            feats.tokens = load_tokens(tokens_path(path))
        return feats
    saes = {name: load_sae(d) for name, d in sae_dirs.items()}
    feats = extract_features(
        lm, cfg.layer, texts, saes, cfg.poolings, cfg.context, cfg.batch_size, progress,
        use_autocast, per_token=per_token,
    )  # fmt: skip
    if feats.tokens is not None:
        save_tokens(tokens_path(path), feats.tokens)
    save_features(path, feats)
    return feats


def _split_index(rows) -> dict[str, np.ndarray]:
    index = {
        s: np.array([i for i, r in enumerate(rows) if r.split == s])
        for s in ("train", "val", "ood")
    }
    return {s: ix for s, ix in index.items() if len(ix)}


def _token_inputs(
    tokens: TokenCache, index: dict[str, np.ndarray], sae_names: list[str], with_saes: bool
) -> TokenInputs:
    """Per-split per-token residuals, and per SAE its latents as the per-token suite reads
    them (pooled over the same rows for the selection; per-token columns on demand)."""
    dense_all = TokenFeatures(tokens.residual, tokens.offsets)
    dense = {s: dense_all.subset(ix) for s, ix in index.items()}
    saes = {}
    for name in sae_names if with_saes else []:
        sparse = tokens.latents[name]

        def columns(latents, sparse=sparse):
            every = TokenFeatures(sparse.columns(latents), tokens.offsets)
            return {s: every.subset(ix) for s, ix in index.items()}

        saes[name] = SaeTokenLatents(sparse.max_pool(tokens.offsets, index["train"]), columns)
    return TokenInputs(dense=dense, saes=saes)


def token_rows_description(poolings: list[Pooling]) -> str:
    positions = [p.name for p in poolings if p.method == "position"]
    return " + ".join(["user tokens", *positions])


def _probe_data(
    rows, feats: Features, pool: str, sae_names: list[str]
) -> tuple[ProbeData, dict[str, SaeFeatures]]:
    index = _split_index(rows)

    def per_split(values):
        return {s: values[ix] for s, ix in index.items()}

    def meta(attr):
        return {s: [getattr(rows[i], attr) for i in ix] for s, ix in index.items()}

    data = ProbeData(
        X=per_split(feats.dense[pool]),
        y={s: np.array([rows[i].label for i in ix]) for s, ix in index.items()},
        source=meta("source"),
        transform=meta("transform"),
        base_id=meta("base_id"),
    )
    saes = {
        name: SaeFeatures(
            Z=per_split(feats.latents[name][pool]), R=per_split(feats.reconstruction[name][pool])
        )
        for name in sae_names  # config order, whatever order the cache file stored them in
    }
    return data, saes


def run_probe(
    cfg: ProbeConfig, out: str | Path, progress: bool = True, log=print
) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = Path(out)
    summary = build_dataset(resolve_dataset_config(cfg.dataset), out / "dataset")
    log(summary.table)
    rows = load_dataset_dir(out / "dataset")
    sae_dirs, sae_seeds = resolve_saes(cfg.saes, progress)
    lm = load_model(cfg.model, device=resolve_device(cfg.device))
    t_features = time.perf_counter()
    feats = _features(cfg, lm, [r.text for r in rows], sae_dirs, progress, log)
    t_features = time.perf_counter() - t_features
    report: dict[str, Any] = {"feature_seconds": round(t_features, 2), "poolings": {}}
    scored = []
    if cfg.per_token.probes:
        t_tokens = time.perf_counter()
        feats.tokens.check(len(rows), list(sae_dirs) if cfg.per_token.sae_latents else [])
        index = _split_index(rows)
        inputs = _token_inputs(feats.tokens, index, list(sae_dirs), cfg.per_token.sae_latents)
        scored = fit_per_token_probes(
            inputs,
            np.array([rows[i].label for i in index["train"]]),
            [rows[i].base_id for i in index["train"]],
            probes=cfg.per_token.probes,
            settings=PerTokenSettings(
                **cfg.per_token.model_dump(include=set(PerTokenSettings.model_fields))
            ),
            sae_k=cfg.per_token.sae_k,
            sae_selection=cfg.per_token.sae_selection,
            l1_prescreen=cfg.l1.prescreen,
            seed=cfg.seeds[0],
            log=log if progress else None,
        )
        report["per_token_seconds"] = round(time.perf_counter() - t_tokens, 2)
    for i, pooling in enumerate(cfg.poolings):
        target = out if i == 0 else out / f"pooling-{pooling.name}"
        data, saes = _probe_data(rows, feats, pooling.name, list(sae_dirs))
        t_suite = time.perf_counter()
        results = run_probe_suite(
            data,
            saes,
            ks=tuple(cfg.ks),
            selections=tuple(cfg.selections),
            seeds=tuple(cfg.seeds),
            n_bootstrap=cfg.n_bootstrap,
            bootstrap_unit=cfg.bootstrap_unit,
            cs=tuple(cfg.linear.cs),
            n_splits=cfg.linear.n_splits,
            c_criterion=cfg.linear.c_criterion,
            l1_prescreen=cfg.l1.prescreen,
            sparse_c=cfg.l1.refit_c,
            scored=scored,
            sae_seeds=sae_seeds,
        )
        for record in [*results.results, *results.ood_breakdown, *results.sae_seed_results]:
            record["pooling"] = "tokens" if record["probe"] in PER_TOKEN_PROBES else pooling.name
        for record in results.comparisons:
            record["pooling"] = pooling.name
        results.config |= {
            "pooling": pooling.name,
            "token_rows": token_rows_description(cfg.poolings) if scored else None,
            "layer": cfg.layer,
            "model": cfg.model,
            "sae_dirs": {k: str(v) for k, v in sae_dirs.items()},
        }
        write_results(results, target)
        plot_auroc_vs_k(
            results,
            target / "auroc_vs_k.png",
            title=f"{cfg.model} layer {cfg.layer}, {pooling.name}-pooled",
        )
        plot_reconstruction_delta_table(results, target / "reconstruction_delta.png")
        report["poolings"][pooling.name] = {
            "dir": str(target),
            "suite_seconds": round(time.perf_counter() - t_suite, 2),
            "dense_auroc": {r["split"]: r["auroc"] for r in results.find(probe="dense")},
        }
    report["seconds"] = round(time.perf_counter() - t0, 2)
    report["config"] = json.loads(cfg.model_dump_json())
    atomic_write_json(out / "probe_run.json", report)
    return report
