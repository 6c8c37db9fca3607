"""The study config: one YAML file for the whole study, validated in full before any work.

```yaml
title: SAEs against dense probes on SmolLM2
model: smollm2            # every store and the probe read this model...
layer: 15                 # ...at this layer, unless a store says otherwise
sweep:                    # a sweep config (rollouts, stores, phases), inline or a file path
  stores: {docs: {data: python-docs, max_tokens: 60000}}
  d_sae: 4608
  phases: [{name: docs, store: docs, grid: [{architecture: topk, k: 32}]}]
dataset: configs/dataset-shared.yaml      # or inline, or null for the built-in prompts
probe:                    # a probe config; `saes` lists runs of the sweep
  saes: [topk]
  poolings: [{method: max}]
interp:                   # latents and autointerp (null: skipped); runs default to probe.saes
  max_tokens: 20000
  autointerp: {explainer: baseline, n_latents: 20}
debug: {sae: topk}        # dataset debugging on one run (null: skipped)
```

Only the runs the later stages name (and the runs they are finetuned from) are trained, unless
`train_all_runs: true`.

Relative paths resolve against the working directory, as in every other config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from saeprobe.data.prompts.config import DatasetConfig
from saeprobe.interp.autointerp import AutointerpConfig
from saeprobe.interp.collect import LatentsConfig
from saeprobe.interp.debug_dataset import DebugConfig
from saeprobe.lm.models import DEFAULT_MODEL
from saeprobe.probes.benchmark import DEFAULT_PROBE_LAYER, ProbeConfig
from saeprobe.study.validate import validate
from saeprobe.sweep.config import SweepConfig, plan_runs
from saeprobe.sweep.sources import SaeSources
from saeprobe.yaml_config import load_yaml_config


def _inline_or_file(value: Any) -> Any:
    """A mapping as written, or the mapping held by the YAML file it names."""
    return load_yaml_config(value) if isinstance(value, str | Path) else value


class StudyProbe(ProbeConfig):
    """A probe config whose SAEs are runs of the study's sweep."""

    saes: list[str] = Field(default_factory=list, description="runs of the sweep to probe")  # type: ignore[assignment]
    extra_saes: dict[str, Path] = Field(
        default_factory=dict,
        description="name -> SAE directory probed beside the sweep's (e.g. Gemma Scope)",
    )


class StudyInterp(BaseModel):
    """Latent records and autointerp for runs of the sweep (`saeprobe autointerp-sweep`)."""

    model_config = ConfigDict(extra="forbid")

    runs: list[str] = Field(default_factory=list, description="runs to explain [probe.saes]")
    store: str | None = Field(None, description="store to read [each phase's eval store]")
    max_tokens: int | None = Field(20_000, gt=0, description="store tokens read per SAE")
    latents: dict[str, Any] = Field(default_factory=dict, description="saeprobe latents settings")
    autointerp: dict[str, Any] = Field(
        default_factory=lambda: {"explainer": "baseline"}, description="autointerp settings"
    )

    @model_validator(mode="after")
    def _settings_are_valid(self) -> StudyInterp:
        # Checked now, with placeholder paths, so a typo fails before the sweep, not after it.
        validate(LatentsConfig, {**self.latents, "sae": ".", "acts": ".", "out": "."},
                 "study config interp.latents")  # fmt: skip
        validate(AutointerpConfig, {**self.autointerp, "latents": ".", "out": "."},
                 "study config interp.autointerp")  # fmt: skip
        return self


class StudyDebug(DebugConfig):
    """A debug-dataset config on the study's dataset and a run of its sweep."""

    saes: SaeSources | None = None  # type: ignore[assignment]
    sae: str | None = Field(None, description="run of the sweep to debug with [probe.saes[0]]")


class StudyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = "saeprobe study"
    model: str = DEFAULT_MODEL
    layer: int = Field(DEFAULT_PROBE_LAYER, ge=0)
    seed: int = 0
    device: str = "auto"
    sweep: SweepConfig
    dataset: DatasetConfig | None = Field(
        None, description="dataset config (inline or a YAML path); null: the built-in prompts"
    )
    probe: StudyProbe = Field(default_factory=StudyProbe)
    interp: StudyInterp | None = Field(default_factory=StudyInterp)
    debug: StudyDebug | None = Field(default_factory=StudyDebug)
    train_all_runs: bool = Field(
        False, description="train every run of the sweep, not only those later stages read"
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        """Files become mappings; stores and the probe inherit the study's model and layer."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        model = data.get("model", DEFAULT_MODEL)
        layer = data.get("layer", DEFAULT_PROBE_LAYER)
        if "sweep" in data:
            sweep = dict(_inline_or_file(data["sweep"]) or {})
            stores = sweep.get("stores")
            if isinstance(stores, dict):
                sweep["stores"] = {
                    name: {"model": model, "layer": layer, **spec} if isinstance(spec, dict)
                    else spec
                    for name, spec in stores.items()
                }  # fmt: skip
            sweep.setdefault("seed", data.get("seed", 0))
            data["sweep"] = sweep
        if data.get("dataset") is not None:
            data["dataset"] = _inline_or_file(data["dataset"])
        for section in ("probe", "debug"):
            if section == "debug" and "debug" in data and data["debug"] is None:
                continue
            inherited = dict(data.get(section) or {})
            for key, value in (("model", model), ("layer", layer), ("device", data.get("device"))):
                if value is not None:
                    inherited.setdefault(key, value)
            data[section] = inherited
        return data

    @field_validator("probe", "debug")
    @classmethod
    def _no_dataset_or_saes_inside(cls, v):
        if v is not None and v.dataset is not None:
            raise ValueError("set the dataset at the top level (dataset:), not in this section")
        if isinstance(v, StudyDebug) and v.saes is not None:
            raise ValueError("debug.sae names a run of the study's sweep; remove debug.saes")
        return v

    @model_validator(mode="after")
    def _named_runs_exist(self) -> StudyConfig:
        names = [p.name for p in plan_runs(self.sweep)]
        if not self.probe.saes:
            raise ValueError(f"probe.saes is empty; list runs of the sweep ({', '.join(names)})")
        named = {"probe.saes": self.probe.saes}
        if self.interp is not None:
            named["interp.runs"] = self.interp.runs
        if self.debug is not None and self.debug.sae is not None:
            named["debug.sae"] = [self.debug.sae]
        for key, runs in named.items():
            missing = [r for r in runs if r not in names]
            if missing:
                raise ValueError(
                    f"{key} {missing} are not runs of the sweep; choose from {', '.join(names)}"
                )
        return self

    @property
    def interp_runs(self) -> list[str]:
        if self.interp is None:
            return []
        return self.interp.runs or self.probe.saes

    @property
    def debug_run(self) -> str | None:
        if self.debug is None:
            return None
        return self.debug.sae or self.probe.saes[0]

    @property
    def runs_needed(self) -> list[str] | None:
        """The runs later stages read (the sweep adds what they are finetuned from); None: all."""
        if self.train_all_runs:
            return None
        wanted = [*self.probe.saes, *self.interp_runs, self.debug_run]
        return list(dict.fromkeys(r for r in wanted if r is not None))


def load_study_config(path: str | Path) -> StudyConfig:
    return validate(StudyConfig, load_yaml_config(path), f"study config {path}")  # type: ignore[return-value]
