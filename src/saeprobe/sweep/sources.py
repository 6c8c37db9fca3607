"""Where SAEs to read come from: runs of a sweep (trained here, resumed, or reused) and SAE
directories. Later stages (probing, dataset debugging) name the SAEs they want; this module
turns those names into directories, training only the runs named and what they finetune from.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from saeprobe.errors import ConfigError
from saeprobe.sae.config import build_config
from saeprobe.sweep.config import SweepConfig, plan_runs
from saeprobe.sweep.runner import SweepLayout, run_sweep
from saeprobe.yaml_config import load_yaml_config


class SaeSources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sweep: Path | None = Field(None, description="sweep config to train or reuse")
    sweep_out: Path | None = Field(None, description="where that sweep lives")
    runs: list[str] = Field(default_factory=list, description="runs of the sweep to probe")
    dirs: dict[str, Path] = Field(default_factory=dict, description="name -> SAE directory")
    seeds: list[int] = Field(
        default_factory=list,
        description="further seeds to train the sweep with (SAE training noise); each run's "
        "copies are probed too, as RUN@seedS, and every SAE probe reports its AUROC spread "
        "over the sweep's own seed and these",
    )

    @field_validator("dirs")
    @classmethod
    def _names(cls, v: dict[str, Path]) -> dict[str, Path]:
        bad = [n for n in v if "/" in n or not n]
        if bad:
            raise ValueError(f"SAE name {bad[0]!r} may not be empty or contain '/'")
        return v


def seed_name(run: str, seed: int) -> str:
    return f"{run}@seed{seed}"


def resolve_saes(cfg: SaeSources, progress: bool) -> tuple[dict[str, Path], dict[str, list[str]]]:
    """(SAE name -> directory, run -> its copies trained with `seeds`); trains (or resumes, or
    reuses) the sweep when one is named, and once more per extra seed, in SWEEP_OUT-seedS."""
    dirs = dict(cfg.dirs)
    copies: dict[str, list[str]] = {}
    if cfg.seeds and cfg.sweep is None:
        raise ConfigError("saes.seeds retrains a sweep's runs; name the sweep (saes.sweep)")
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
        run_sweep(sweep, cfg.sweep_out, progress=progress, runs=cfg.runs or None)
        layout = SweepLayout(cfg.sweep_out)
        dirs |= {run: layout.sae(run) for run in cfg.runs}
        for seed in dict.fromkeys(cfg.seeds):
            if seed == sweep.seed:
                continue
            out = cfg.sweep_out.parent / f"{cfg.sweep_out.name}-seed{seed}"
            run_sweep(
                sweep.model_copy(update={"seed": seed}), out, progress=progress,
                runs=cfg.runs or None,
            )  # fmt: skip
            for run in cfg.runs:
                dirs[seed_name(run, seed)] = SweepLayout(out).sae(run)
                copies.setdefault(run, []).append(seed_name(run, seed))
    if not dirs:
        raise ConfigError("no SAEs to probe; list saes.runs of a sweep or saes.dirs")
    return dirs, copies
