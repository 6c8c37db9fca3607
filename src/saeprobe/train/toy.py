"""`saeprobe toy`: train an SAE on planted-feature data and measure what it recovered.

The defaults below were tuned so each architecture finishes within about a minute on 2 CPU
cores and recovers the planted dictionary (see docs/toy.md for the sweep that chose them).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from saeprobe.data.planted import PlantedConfig, PlantedDictionary, PlantedSource
from saeprobe.io_utils import atomic_write_json
from saeprobe.metrics.reconstruction import evaluate_on_tensor
from saeprobe.metrics.recovery import feature_recovery, max_cosines
from saeprobe.sae.config import build_config
from saeprobe.sae.registry import get_architecture, make_config
from saeprobe.train import recipes
from saeprobe.train.config import RunSpec, TrainConfig
from saeprobe.train.trainer import Trainer

# The architectures' own defaults are the tuned toy values; only k is toy-specific. TopK uses the
# true L0 (~4); BatchTopK recovers far more at k = 1 (docs/toy.md, section 3).
TOY_SAE_DEFAULTS: dict[str, dict[str, Any]] = {"topk": {"k": 4}, "batchtopk": {"k": 1}}
TOY_TRAIN_DEFAULTS: dict[str, Any] = {
    "steps": 3000,
    "lr": 3e-3,
    "lr_warmup_steps": 100,
    "dead_after_tokens": 200_000,
    "log_every": 100,
}
# JumpReLU and BatchTopK learn the rarest planted features more slowly (docs/toy.md): 1.5x steps.
TOY_TRAIN_ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "jumprelu": {"steps": 4500},
    "batchtopk": {"steps": 4500},
}


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    architecture: str = "topk"
    d_sae: int = Field(1024, gt=0)
    batch_size: int = Field(1024, gt=0)
    eval_rows: int = Field(32_768, gt=0)
    sae: dict[str, Any] = Field(default_factory=dict, description="overrides of SAE settings")
    train: dict[str, Any] = Field(default_factory=dict, description="overrides of TrainConfig")
    planted: PlantedConfig = Field(default_factory=PlantedConfig)
    recipe: str | None = Field(None, description="a training preset, e.g. gemma-scope")


def build_runs(cfg: ToyConfig) -> tuple[TrainConfig, RunSpec]:
    get_architecture(cfg.architecture)  # unknown name -> one-line error listing the choices
    sae = {
        "architecture": cfg.architecture,
        "d_in": cfg.planted.d,
        "d_sae": cfg.d_sae,
        **TOY_SAE_DEFAULTS.get(cfg.architecture, {}),
        **recipes.sae_values(cfg.recipe, cfg.architecture, cfg.sae),
        **cfg.sae,
    }
    train_data = {
        **TOY_TRAIN_DEFAULTS,
        **TOY_TRAIN_ARCH_DEFAULTS.get(cfg.architecture, {}),
        "seed": cfg.planted.seed,
        **recipes.train_values(cfg.recipe, cfg.train),
        **cfg.train,
    }
    train = build_config(TrainConfig, train_data, what="training settings")
    return train, RunSpec(name=cfg.architecture, sae=make_config(sae))


def recipe_record(cfg: ToyConfig) -> dict[str, Any] | None:
    return recipes.record(
        cfg.recipe,
        recipes.sae_values(cfg.recipe, cfg.architecture, cfg.sae),
        recipes.train_values(cfg.recipe, cfg.train),
    )


def run_toy(
    cfg: ToyConfig,
    out: str | Path | None = None,
    json_path: str | Path | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    train_cfg, spec = build_runs(cfg)
    dictionary = PlantedDictionary(cfg.planted)
    source = PlantedSource(dictionary, cfg.batch_size, seed=cfg.planted.seed)
    result = Trainer(train_cfg, [spec]).fit(source, resume=resume)
    sae = result.export(spec.name).export_for_inference()

    eval_gen = torch.Generator().manual_seed(cfg.planted.seed + 2**40)
    eval_x = dictionary.sample(cfg.eval_rows, eval_gen)
    metrics, _ = evaluate_on_tensor(sae, eval_x)
    recovery = feature_recovery(dictionary.directions, sae.W_dec.detach())
    best = max_cosines(dictionary.directions, sae.W_dec.detach())
    n_freq = cfg.planted.n_frequent
    report: dict[str, Any] = {
        "architecture": cfg.architecture,
        **recovery,
        "recovered_fraction_frequent": float((best[:n_freq] >= 0.9).double().mean())
        if n_freq
        else None,
        "l0": metrics["l0"],
        "fvu": metrics["fvu"],
        "nmse": metrics["nmse"],
        "n_high_frequency": metrics["n_high_frequency"],
        "dead_fraction": metrics["dead_fraction"],
        "true_l0": dictionary.expected_l0,
        "steps": train_cfg.steps,
        "rows_trained": train_cfg.steps * cfg.batch_size,
        "train_seconds": round(result.seconds, 2),
        "seconds": round(time.perf_counter() - t0, 2),
        "sae": spec.sae.model_dump(),
        "train": train_cfg.model_dump(mode="json"),
        "planted": cfg.planted.model_dump(),
        "recipe": recipe_record(cfg),
    }
    if out is not None:
        meta = {"source": "saeprobe toy", "planted": report["planted"]}
        if report["recipe"] is not None:
            meta["recipe"] = report["recipe"]
        result.save(spec.name, out, metadata=meta)
        report["sae_dir"] = str(out)
    if json_path is not None:
        atomic_write_json(json_path, report)
    return report


def dump(report: dict[str, Any]) -> str:
    keys = (
        "architecture",
        "recovered_fraction",
        "mean_max_cosine",
        "l0",
        "fvu",
        "n_high_frequency",
        "dead_fraction",
        "seconds",
    )
    return json.dumps({k: report[k] for k in keys})
