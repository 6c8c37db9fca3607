"""`saeprobe train`: train one SAE of any architecture on a harvested activation store."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from saeprobe.activations.store import ActivationStore
from saeprobe.errors import ConfigError, DataError
from saeprobe.io_utils import atomic_write_json
from saeprobe.metrics.evaluate import reconstruction_metrics, training_provenance
from saeprobe.sae.config import SAEConfig, build_config
from saeprobe.sae.registry import get_architecture, make_config
from saeprobe.train import distributed, recipes
from saeprobe.train.config import RunSpec, TrainConfig
from saeprobe.train.finetune import with_inherited
from saeprobe.train.trainer import Trainer, resolve_device


class StoreTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    acts: Path
    out: Path
    layer: int | None = Field(None, description="which stored layer; needed if several")
    architecture: str = Field("topk", description="default: the finetuned SAE's, else topk")
    d_sae: int | None = Field(
        None, gt=0, description="latents; default the finetuned SAE's, else 8 x d_model"
    )
    batch_size: int = Field(4096, gt=0)
    epochs: float | None = Field(
        None, gt=0, description="passes over the store; default 1 unless train.steps is set"
    )
    holdout_tokens: int = Field(
        0,
        ge=0,
        description="leave the store's last N tokens out of training, so that `saeprobe "
        "evaluate --eval-tokens N` scores held-out tokens",
    )
    eval_batches: int = Field(8, ge=0, description="batches for the summary metrics")
    verify: bool = Field(True, description="check shard checksums before training")
    init_from: Path | None = Field(None, description="finetune from this saved SAE")
    reinit_fraction: float = Field(0.0, ge=0, lt=1)
    sae: dict[str, Any] = Field(default_factory=dict, description="SAE settings, e.g. k")
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig overrides")
    recipe: str | None = Field(
        None,
        description="a preset (train.recipes) filling the settings not given, e.g. gemma-scope",
    )

    @property
    def checkpoint_dir(self) -> Path:
        return self.out.with_name(self.out.name + ".checkpoint")


def schedule_defaults(train: dict[str, Any], checkpoint_dir: Path) -> dict[str, Any]:
    """Warm-up and checkpointing that scale with short runs (train["steps"] must be set)."""
    steps = train["steps"]
    return {
        "lr_warmup_steps": min(100, steps // 10),
        "checkpoint_dir": checkpoint_dir,
        "checkpoint_every": max(1, min(500, steps // 10)),
        **train,
    }


def _train_config(cfg: StoreTrainConfig, steps_per_epoch: int, preset: dict[str, Any]):
    """The training settings: the user's, then the recipe's (`preset`), then the defaults."""
    train = preset | cfg.train
    if cfg.epochs is not None or "steps" not in train:
        train["steps"] = max(1, round((cfg.epochs or 1.0) * steps_per_epoch))
    train = schedule_defaults(train, cfg.checkpoint_dir)
    return build_config(TrainConfig, train, what="training settings")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train_from_store(
    cfg: StoreTrainConfig, resume: bool = False, log: Callable[[str], None] = _stderr
) -> dict[str, Any] | None:
    """Train, save and summarise one SAE. Under torchrun every rank trains on its slice of each
    batch and rank 0 writes the outputs; the other ranks return None."""
    try:
        return _train_from_store(cfg, resume, log)
    finally:
        distributed.ranks.teardown()


def _train_from_store(
    cfg: StoreTrainConfig, resume: bool, log: Callable[[str], None]
) -> dict[str, Any] | None:
    t0 = time.perf_counter()
    get_architecture(cfg.architecture)
    preset_train = recipes.train_values(cfg.recipe, cfg.train)
    store = ActivationStore(cfg.acts, verify=cfg.verify)
    seed = int(cfg.train.get("seed", 0))
    train_rows = (0, store.n_tokens - cfg.holdout_tokens)
    if cfg.holdout_tokens and train_rows[1] < cfg.batch_size:
        raise DataError(
            f"--holdout-tokens {cfg.holdout_tokens} leaves {max(train_rows[1], 0)} of the store's "
            f"{store.n_tokens} tokens to train on, fewer than one batch ({cfg.batch_size}); "
            "hold out fewer tokens"
        )
    source = store.source(cfg.batch_size, layer=cfg.layer, seed=seed, rows=train_rows)
    if cfg.eval_batches and cfg.eval_batches >= source.per_epoch:
        cfg = cfg.model_copy(update={"eval_batches": max(1, source.per_epoch // 4)})
    train_cfg = _train_config(cfg, source.per_epoch, preset_train)
    for warning in recipes.check_run_length(cfg.recipe, preset_train, train_cfg.steps):
        log(warning)
    if resume and not cfg.checkpoint_dir.exists():
        raise ConfigError(f"--resume: no checkpoint at {cfg.checkpoint_dir}; drop --resume")
    sae_cfg, preset_sae = _sae_config(cfg, store.d_model)
    recipe = recipes.record(cfg.recipe, preset_sae, preset_train)
    spec = RunSpec(
        name=sae_cfg.architecture,
        sae=sae_cfg,
        init_from=cfg.init_from,
        reinit_fraction=cfg.reinit_fraction,
    )
    result = Trainer(train_cfg, [spec]).fit(source, resume=resume)
    if not distributed.is_main():
        return None
    sae = result.export(spec.name)
    manifest = store.manifest
    meta = {
        "source": "saeprobe train",
        "model_name": manifest.model,
        "model_weights_sha256": manifest.model_weights_sha256,
        "hook_layer": source.layer,
        "context_size": manifest.context,
        "dataset_path": manifest.data,
        **training_provenance(store, train_rows),
    }
    if recipe is not None:
        meta["recipe"] = recipe
    result.save(spec.name, cfg.out, metadata=meta)
    tokens, prefix = cfg.eval_batches * cfg.batch_size, "train_"
    if cfg.holdout_tokens:
        tokens, prefix = min(tokens, cfg.holdout_tokens), "heldout_"
    summary = _summary(sae, store, source.layer, tokens, train_cfg.device, prefix)
    report = {
        "architecture": sae_cfg.architecture,
        "sae_dir": str(cfg.out),
        "layer": source.layer,
        "steps": train_cfg.steps,
        "tokens_trained": train_cfg.steps * cfg.batch_size,
        "store_tokens": store.n_tokens,
        "train_rows": list(train_rows),
        **summary,
        "dead_fraction_training": result.dead_fraction[spec.name],
        "train_seconds": round(result.seconds, 2),
        "seconds": round(time.perf_counter() - t0, 2),
        "recipe": recipe,
        "sae": sae_cfg.model_dump(),
        "train": train_cfg.model_dump(mode="json"),
    }
    atomic_write_json(cfg.out / "train_report.json", report)
    return report


def _sae_config(cfg: StoreTrainConfig, d_model: int) -> tuple[SAEConfig, dict[str, Any]]:
    """The SAE settings given (the `sae:` section wins), then those inherited from the SAE being
    finetuned, then the recipe's, then the defaults; and what the recipe set."""
    top = {"architecture": cfg.architecture, "d_sae": cfg.d_sae}
    given = {k: v for k, v in top.items() if k in cfg.model_fields_set and v is not None}
    settings = with_inherited(given | cfg.sae, cfg.init_from)
    arch = settings.get("architecture", cfg.architecture)
    preset = recipes.sae_values(cfg.recipe, arch, settings)
    defaults = {"architecture": cfg.architecture, "d_sae": 8 * d_model}
    return make_config(defaults | {"d_in": d_model} | preset | settings), preset


def _summary(sae, store, layer: int, tokens: int, device: str, prefix: str) -> dict[str, Any]:
    """FVU / L0 on the store's last `tokens` tokens: training data (a sanity check) unless
    --holdout-tokens kept them out; `saeprobe evaluate` reports the full set."""
    if tokens == 0:
        return {}
    rows = (max(0, store.n_tokens - tokens), store.n_tokens)
    result, _ = reconstruction_metrics(sae, store, layer, rows, device=resolve_device(device))
    return {f"{prefix}{k}": result[k] for k in ("fvu", "nmse", "l0", "n_high_frequency")}
