"""`saeprobe train`: train one SAE of any architecture on a harvested activation store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from saeprobe.activations.store import ActivationStore
from saeprobe.errors import ConfigError
from saeprobe.io_utils import atomic_write_json
from saeprobe.pipeline.evaluate import reconstruction_metrics
from saeprobe.sae.config import SAEConfig, build_config
from saeprobe.sae.registry import get_architecture, make_config
from saeprobe.train import distributed
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
    eval_batches: int = Field(8, ge=0, description="batches for the summary metrics")
    verify: bool = Field(True, description="check shard checksums before training")
    init_from: Path | None = Field(None, description="finetune from this saved SAE")
    reinit_fraction: float = Field(0.0, ge=0, lt=1)
    sae: dict[str, Any] = Field(default_factory=dict, description="SAE settings, e.g. k")
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig overrides")

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


def _train_config(cfg: StoreTrainConfig, steps_per_epoch: int) -> TrainConfig:
    train = dict(cfg.train)
    if cfg.epochs is not None or "steps" not in train:
        train["steps"] = max(1, round((cfg.epochs or 1.0) * steps_per_epoch))
    train = schedule_defaults(train, cfg.checkpoint_dir)
    return build_config(TrainConfig, train, what="training settings")


def train_from_store(cfg: StoreTrainConfig, resume: bool = False) -> dict[str, Any] | None:
    """Train, save and summarise one SAE. Under torchrun every rank trains on its slice of each
    batch and rank 0 writes the outputs; the other ranks return None."""
    try:
        return _train_from_store(cfg, resume)
    finally:
        distributed.ranks.teardown()


def _train_from_store(cfg: StoreTrainConfig, resume: bool) -> dict[str, Any] | None:
    t0 = time.perf_counter()
    get_architecture(cfg.architecture)
    store = ActivationStore(cfg.acts, verify=cfg.verify)
    seed = int(cfg.train.get("seed", 0))
    source = store.source(cfg.batch_size, layer=cfg.layer, seed=seed)
    if cfg.eval_batches and cfg.eval_batches >= source.per_epoch:
        cfg = cfg.model_copy(update={"eval_batches": max(1, source.per_epoch // 4)})
    train_cfg = _train_config(cfg, source.per_epoch)
    if resume and not cfg.checkpoint_dir.exists():
        raise ConfigError(f"--resume: no checkpoint at {cfg.checkpoint_dir}; drop --resume")
    sae_cfg = _sae_config(cfg, store.d_model)
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
        "activation_store": str(cfg.acts),
    }
    result.save(spec.name, cfg.out, metadata=meta)
    summary = _summary(
        sae, store, source.layer, cfg.eval_batches * cfg.batch_size, train_cfg.device
    )
    report = {
        "architecture": sae_cfg.architecture,
        "sae_dir": str(cfg.out),
        "layer": source.layer,
        "steps": train_cfg.steps,
        "tokens_trained": train_cfg.steps * cfg.batch_size,
        "store_tokens": store.n_tokens,
        **summary,
        "dead_fraction_training": result.dead_fraction[spec.name],
        "train_seconds": round(result.seconds, 2),
        "seconds": round(time.perf_counter() - t0, 2),
        "sae": sae_cfg.model_dump(),
        "train": train_cfg.model_dump(mode="json"),
    }
    atomic_write_json(cfg.out / "train_report.json", report)
    return report


def _sae_config(cfg: StoreTrainConfig, d_model: int) -> SAEConfig:
    """The SAE settings given (the `sae:` section wins), then those inherited from the SAE being
    finetuned, then the defaults."""
    top = {"architecture": cfg.architecture, "d_sae": cfg.d_sae}
    given = {k: v for k, v in top.items() if k in cfg.model_fields_set and v is not None}
    settings = with_inherited(given | cfg.sae, cfg.init_from)
    defaults = {"architecture": cfg.architecture, "d_sae": 8 * d_model}
    return make_config(defaults | {"d_in": d_model} | settings)


def _summary(sae, store, layer: int, tokens: int, device: str) -> dict[str, Any]:
    """FVU / L0 on the store's last `tokens` tokens (training data: a sanity check; for a held-out
    evaluation use `saeprobe evaluate` on another store)."""
    if tokens == 0:
        return {}
    rows = (max(0, store.n_tokens - tokens), store.n_tokens)
    result, _ = reconstruction_metrics(sae, store, layer, rows, device=resolve_device(device))
    return {f"train_{k}": result[k] for k in ("fvu", "nmse", "l0", "n_high_frequency")}
