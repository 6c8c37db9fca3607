"""Typed training configuration (shared by every run) and per-run specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from saeprobe.sae.config import SAEConfig
from saeprobe.sae.registry import make_config


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(2000, gt=0, description="optimizer steps (batches) to train for")
    lr: float = Field(1e-3, gt=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = Field(1e-8, gt=0)
    # In these units (E||x||^2 = 1) a TopK/BatchTopK gradient norm falls from ~0.15 to ~0.03 in
    # the first 50 steps, so 0.01 clips every early step: Adam then sees gradient directions,
    # and its second moment does not keep the first steps' large gradients as the scale of every
    # later one. SAELens' clip at 1.0 does the same in its units (E||x|| = sqrt(d_in)).
    max_grad_norm: float | None = Field(
        0.01,
        gt=0,
        description="clip each SAE's gradient to this global norm before Adam; None or 'off': off "
        "(docs/benchmarks.md: equal-steps quality)",
    )
    lr_warmup_steps: int = Field(100, ge=0, description="warm-up from 0.1 lr over N steps")
    lr_warmup: Literal["linear", "cosine"] = Field(
        "linear", description="shape of the warm-up from 0.1 lr to lr (Gemma Scope: cosine)"
    )
    lr_decay_steps: int | None = Field(
        None, ge=0, description="linear decay to 0 over the last N steps; default 20% of steps"
    )
    sparsity_warmup_steps: int | None = Field(
        None, ge=0, description="linear warm-up of the sparsity coefficient; default 5% of steps"
    )
    dead_after_tokens: int = Field(
        1_000_000, gt=0, description="a latent that has not fired for this many rows is dead"
    )
    normalization_batches: int = Field(
        16, gt=0, description="batches used to estimate the scalar with E||x||^2 = 1"
    )
    b_dec_init: Literal["mean", "zero"] = Field(
        "mean", description="start b_dec at the mean of the first batch, or at zero (Gemma Scope)"
    )
    seed: int = 0
    device: str = "auto"
    autocast_bf16: bool = Field(False, description="bf16 autocast for the SAE forward/backward")
    compile: bool = Field(False, description="torch.compile each architecture's training step")
    checkpoint_dir: Path | None = None
    checkpoint_every: int | None = Field(None, gt=0)
    snapshot_steps: list[int] = Field(
        default_factory=list,
        description="also save every run's SAE after these steps (e.g. for finetuning from "
        "an earlier point); saved under snapshot_dir/<run>/step<N>",
    )
    snapshot_dir: Path | None = None
    log_every: int = Field(50, gt=0)
    metrics_path: Path | None = Field(None, description="JSONL file for training metrics")
    progress: bool = True
    wandb_project: str | None = Field(None, description="log to wandb when it is installed")

    @field_validator("max_grad_norm", mode="before")
    @classmethod
    def _clip_off(cls, v: Any) -> Any:
        # "off" from the command line; YAML 1.1 reads a bare `off` as False.
        if v is False or (isinstance(v, str) and v.strip().lower() == "off"):
            return None
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                raise ValueError(f"{v!r} is neither a number nor 'off'") from None
        return v

    @field_validator("adam_betas")
    @classmethod
    def _betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError(f"adam_betas must lie in [0, 1) (got {v}); e.g. (0.9, 0.999)")
        return v

    @model_validator(mode="after")
    def _checkpointing(self) -> TrainConfig:
        if self.checkpoint_every is not None and self.checkpoint_dir is None:
            raise ValueError("checkpoint_every needs checkpoint_dir; pass --checkpoint-dir DIR")
        return self

    @model_validator(mode="after")
    def _snapshots(self) -> TrainConfig:
        if self.snapshot_steps and self.snapshot_dir is None:
            raise ValueError("snapshot_steps needs snapshot_dir; set where snapshots go")
        bad = [s for s in self.snapshot_steps if not 0 < s <= self.steps]
        if bad:
            raise ValueError(f"snapshot step {bad[0]} is outside 1..steps={self.steps}")
        return self

    @property
    def decay_steps(self) -> int:
        return self.lr_decay_steps if self.lr_decay_steps is not None else self.steps // 5

    @property
    def sparsity_warmup(self) -> int:
        if self.sparsity_warmup_steps is not None:
            return self.sparsity_warmup_steps
        return self.steps // 20

    def resume_fingerprint(self) -> dict[str, Any]:
        """Fields that must not change between a run and its resumption (exactness)."""
        keep = (
            "steps lr adam_betas adam_eps lr_warmup_steps lr_decay_steps sparsity_warmup_steps "
            "dead_after_tokens normalization_batches seed autocast_bf16"
        ).split()
        # Fields added later count only when they differ from the behaviour before they existed,
        # so older checkpoints still resume, and one trained unclipped is not resumed clipped.
        later = {"lr_warmup": "linear", "b_dec_init": "mean", "max_grad_norm": None}
        dump = self.model_dump(mode="json")
        out = {k: v for k, v in dump.items() if k in keep}
        return out | {k: dump[k] for k, before in later.items() if dump[k] != before}


class RunSpec(BaseModel):
    """One SAE to train from the shared activation stream."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(min_length=1)
    sae: SAEConfig
    init_from: Path | None = Field(None, description="finetune from this saved SAE directory")
    reinit_fraction: float = Field(
        0.0, ge=0, lt=1, description="fraction of latents re-initialised before finetuning"
    )
    lr: float | None = Field(None, gt=0, description="overrides TrainConfig.lr for this run")

    @field_validator("sae", mode="before")
    @classmethod
    def _sae_config(cls, v: Any) -> SAEConfig:
        return make_config(v) if isinstance(v, dict) else v
