"""`saeprobe probe`: the OOD harmful-intent benchmark, end to end.

dataset (built from its config, deterministic) -> SAEs (a sweep trained or reused, and/or SAE
directories) -> pooled features over the user-turn tokens (one model pass for every SAE, cached
on disk) -> the probe suite per pooling -> results.json / results.csv / figures.

The first pooling's results are written to OUT; every further pooling to OUT/pooling-<name>/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from saeprobe.cache import cache_root
from saeprobe.datasets.build import build_dataset, load_dataset_dir
from saeprobe.datasets.config import load_dataset_config
from saeprobe.errors import ConfigError
from saeprobe.features.cache import feature_key, load_features, save_features
from saeprobe.features.extract import Features, extract_features
from saeprobe.features.pooling import Pooling
from saeprobe.io_utils import atomic_write_json
from saeprobe.lm.models import DEFAULT_MODEL, load_model
from saeprobe.lm.precision import resolve_autocast
from saeprobe.probes import ProbeData, SaeFeatures, run_probe_suite, write_results
from saeprobe.probes.plots import plot_auroc_vs_k, plot_reconstruction_delta_table
from saeprobe.sae.config import build_config
from saeprobe.sae.io import load_sae
from saeprobe.sweep.config import SweepConfig, plan_runs
from saeprobe.sweep.runner import SweepLayout, run_sweep
from saeprobe.train.trainer import resolve_device
from saeprobe.yaml_config import load_yaml_config

# SmolLM2's probing layer, chosen by `saeprobe scan-layers` on the training split (docs/probing.md).
DEFAULT_PROBE_LAYER = 15


class SaeSources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sweep: Path | None = Field(None, description="sweep config to train or reuse")
    sweep_out: Path | None = Field(None, description="where that sweep lives")
    runs: list[str] = Field(default_factory=list, description="runs of the sweep to probe")
    dirs: dict[str, Path] = Field(default_factory=dict, description="name -> SAE directory")

    @field_validator("dirs")
    @classmethod
    def _names(cls, v: dict[str, Path]) -> dict[str, Path]:
        bad = [n for n in v if "/" in n or not n]
        if bad:
            raise ValueError(f"SAE name {bad[0]!r} may not be empty or contain '/'")
        return v


class ProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Path | None = Field(None, description="dataset config YAML; none = offline default")
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


def load_probe_config(path: str | Path) -> ProbeConfig:
    return build_config(ProbeConfig, load_yaml_config(path), what=f"probe config {path}")


def resolve_saes(cfg: SaeSources, progress: bool) -> dict[str, Path]:
    """SAE name -> directory; trains (or resumes, or reuses) the sweep when one is named."""
    dirs = dict(cfg.dirs)
    if cfg.sweep is not None:
        if cfg.sweep_out is None:
            raise ConfigError("saes.sweep needs saes.sweep_out: the directory the sweep lives in")
        sweep = build_config(SweepConfig, load_yaml_config(cfg.sweep), what=f"sweep {cfg.sweep}")
        names = {p.name for p in plan_runs(sweep)}
        missing = [r for r in cfg.runs if r not in names]
        if missing:
            raise ConfigError(
                f"saes.runs {missing} are not runs of {cfg.sweep}; choose from {sorted(names)}"
            )
        run_sweep(sweep, cfg.sweep_out, progress=progress)
        layout = SweepLayout(cfg.sweep_out)
        dirs |= {run: layout.sae(run) for run in cfg.runs}
    if not dirs:
        raise ConfigError("no SAEs to probe; list saes.runs of a sweep or saes.dirs")
    return dirs


def _features(cfg: ProbeConfig, lm, texts, sae_dirs, progress, log) -> Features:
    use_autocast = resolve_autocast(cfg.autocast, next(lm.model.parameters()).device)
    key = feature_key(lm, cfg.layer, cfg.context, cfg.poolings, texts, sae_dirs, use_autocast)
    path = cache_root() / "features" / f"{key}.safetensors"
    if path.exists():
        log(f"features: cached ({path})")
        return load_features(path)
    saes = {name: load_sae(d) for name, d in sae_dirs.items()}
    feats = extract_features(
        lm, cfg.layer, texts, saes, cfg.poolings, cfg.context, cfg.batch_size, progress,
        use_autocast,
    )  # fmt: skip
    save_features(path, feats)
    return feats


def _probe_data(
    rows, feats: Features, pool: str, sae_names: list[str]
) -> tuple[ProbeData, dict[str, SaeFeatures]]:
    index = {
        s: np.array([i for i, r in enumerate(rows) if r.split == s])
        for s in ("train", "val", "ood")
    }
    index = {s: ix for s, ix in index.items() if len(ix)}

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
    summary = build_dataset(load_dataset_config(cfg.dataset), out / "dataset")
    log(summary.table)
    rows = load_dataset_dir(out / "dataset")
    sae_dirs = resolve_saes(cfg.saes, progress)
    lm = load_model(cfg.model, device=resolve_device(cfg.device))
    t_features = time.perf_counter()
    feats = _features(cfg, lm, [r.text for r in rows], sae_dirs, progress, log)
    t_features = time.perf_counter() - t_features
    report: dict[str, Any] = {"feature_seconds": round(t_features, 2), "poolings": {}}
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
        )
        for record in [*results.results, *results.ood_breakdown]:
            record["pooling"] = pooling.name
        results.config |= {
            "pooling": pooling.name,
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
