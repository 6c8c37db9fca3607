"""The sweep config: activation stores, then phases of SAE runs trained from one store each.

```yaml
stores:
  pretrain: {model: smollm2, layer: 15, data: corpus.jsonl, max_tokens: 650000}
d_sae: 1536
batch_size: 2048
eval_tokens: 32768            # each store's last N tokens are held out for evaluation
phases:
  - name: pretrain
    store: pretrain
    grid:
      - {architecture: topk, k: [16, 32, 64]}
      - {architecture: jumprelu, sparsity_penalty: quadratic-frequency,
         frequency_scale: [0.1, 0.01], sparsity_coefficient: [0.01, 0.03, 0.1]}
  - name: chat
    store: chat
    steps: 100
    grid:
      - {name: ft-topk, architecture: topk, k: 32, init_from: topk-k32, reinit_fraction: 0.1}
```

A grid entry's list values are crossed; every other key is an SAE setting, except `name`,
`init_from` (a run of an earlier phase, `run@STEP` for that run's snapshot, or a directory),
`reinit_fraction`, `lr` and `d_sae`. `auxk: true / false` switches the AuxK dead-latent loss
(on is aux_coefficient 1/32 unless one is given; off is 0), e.g. `auxk: [true, false]` to compare
JumpReLU and Gated on equal terms. All runs of a phase train together, from one pass over the
store's training tokens.

`recipe: gemma-scope` (for the whole sweep, or per phase) fills every setting a grid entry or a
`train:` section leaves out with the recipe's (train/recipes.py); each saved SAE records them.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from saeprobe.activations.harvest import DEFAULT_OUTLIER_FACTOR
from saeprobe.data.documents import MixSource
from saeprobe.errors import ConfigError
from saeprobe.lm.models import DEFAULT_MODEL
from saeprobe.sae.auxk import auxk_settings
from saeprobe.sae.registry import make_config
from saeprobe.sweep.rollouts import RolloutsSpec, rollouts_name

RUN_KEYS = ("name", "init_from", "reinit_fraction", "lr", "d_sae")
# Short names of swept settings, for run names such as "jumprelu-qf-w0_0.1-lam_0.03".
SHORT = {
    "l1_coefficient": "l1",
    "sparsity_coefficient": "lam",
    "frequency_scale": "w0",
    "k": "k",
    "reinit_fraction": "reinit",
    "auxk": "auxk",
}


class StoreSpec(BaseModel):
    """An activation store to harvest, or to reuse when an identical one is cached."""

    model_config = ConfigDict(extra="forbid")

    model: str = DEFAULT_MODEL
    layer: int = Field(ge=0)
    data: str = "python-docs"
    field: str | None = None
    mix: list[MixSource] = Field(default_factory=list)
    chat: bool = False
    max_tokens: int = Field(gt=0)
    context: int = Field(128, ge=2)
    dtype: str = "float32"
    autocast: bool | None = Field(
        None, description="harvest under bf16 autocast; null: where bf16 is fast"
    )
    outlier_factor: float | None = Field(
        DEFAULT_OUTLIER_FACTOR, gt=1, description="see saeprobe harvest; null keeps every token"
    )
    path: Path | None = Field(None, description="where the store lives; default the cache")


class Phase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    store: str
    eval_store: str | None = Field(
        None,
        description="store whose held-out tail (and held-out documents) evaluates this phase's "
        "SAEs, e.g. chat rollouts for every chat-SAE variant; default the phase's own store",
    )
    steps: int | None = Field(None, gt=0, description="default: one pass over the store")
    snapshot_steps: list[int] = Field(default_factory=list)
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig overrides")
    recipe: str | None = Field(None, description="training preset for this phase's runs")
    grid: list[dict[str, Any]] = Field(min_length=1)


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rollouts: dict[str, RolloutsSpec] = Field(
        default_factory=dict, description="chat data to generate; stores read rollouts:NAME"
    )
    stores: dict[str, StoreSpec] = Field(min_length=1)
    d_sae: int = Field(gt=0)
    batch_size: int = Field(4096, gt=0)
    eval_tokens: int = Field(32_768, gt=0)
    lm_windows: int = Field(32, ge=0, description="windows for the spliced-model metrics")
    seed: int = 0
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig overrides")
    recipe: str | None = Field(
        None, description="training preset for every phase (a phase's own recipe wins)"
    )
    phases: list[Phase] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> SweepConfig:
        for name, store in self.stores.items():
            wanted = rollouts_name(store.data)
            if wanted is not None and wanted not in self.rollouts:
                raise ValueError(
                    f"store {name!r} reads rollouts {wanted!r}; define it under rollouts "
                    f"(have: {', '.join(self.rollouts) or 'none'})"
                )
        for phase in self.phases:
            for used in filter(None, (phase.store, phase.eval_store)):
                if used not in self.stores:
                    raise ValueError(
                        f"phase {phase.name!r} uses store {used!r}; define it under stores "
                        f"(have: {', '.join(self.stores)})"
                    )
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError("phase names must be distinct")
        from saeprobe.train.recipes import get_recipe

        for recipe in {self.recipe, *(p.recipe for p in self.phases)} - {None}:
            get_recipe(recipe)  # an unknown name fails before any work starts
        return self

    def phase_recipe(self, phase: Phase) -> str | None:
        return phase.recipe or self.recipe


class RunPlan(BaseModel):
    """One SAE of the sweep, fully expanded."""

    model_config = ConfigDict(extra="forbid")

    name: str
    phase: str
    sae: dict[str, Any]
    init_from: str | None = None
    reinit_fraction: float = 0.0
    lr: float | None = None
    swept: dict[str, Any] = Field(default_factory=dict)

    @property
    def series(self) -> str:
        """The plot series: architecture, with the QF frequency scale when there is one."""
        arch = self.sae["architecture"]
        if self.sae.get("sparsity_penalty") == "quadratic-frequency":
            return f"{arch} QF ω0={self.sae.get('frequency_scale')}"
        return arch


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def expand_entry(entry: dict[str, Any], phase: str, d_sae: int) -> list[RunPlan]:
    if "architecture" not in entry:
        raise ConfigError(f"a grid entry of phase {phase!r} has no architecture; add one")
    swept_keys = [k for k, v in entry.items() if isinstance(v, list)]
    plans = []
    for values in itertools.product(*(entry[k] for k in swept_keys)):
        flat = {**entry, **dict(zip(swept_keys, values, strict=True))}
        run = {k: flat.pop(k) for k in RUN_KEYS if k in flat}
        auxk = flat.pop("auxk", None)
        if auxk is not None and not isinstance(auxk, bool):
            raise ConfigError(f"phase {phase!r}: auxk must be true or false (got {auxk!r})")
        if auxk is False and float(flat.get("aux_coefficient") or 0) > 0:
            raise ConfigError(
                f"phase {phase!r}: a grid entry sets auxk: false and aux_coefficient "
                f"{flat['aux_coefficient']}; keep one of them"
            )
        flat |= auxk_settings(auxk, flat)
        sae = {"d_sae": run.pop("d_sae", d_sae), **flat}
        make_config({"d_in": 1, **sae})  # fail fast: unknown architecture, bad k, lambda < 0
        base = run.pop("name", None) or _auto_name(sae)
        swept = dict(zip(swept_keys, values, strict=True))
        suffix = "-".join(f"{SHORT.get(k, k)}_{_format(v)}" for k, v in swept.items())
        name = f"{base}-{suffix}" if suffix else base
        plans.append(
            RunPlan(
                name=name,
                phase=phase,
                sae=sae,
                swept=swept,
                **run,
            )
        )
    return plans


def _auto_name(sae: dict[str, Any]) -> str:
    if sae.get("sparsity_penalty") == "quadratic-frequency":
        return f"{sae['architecture']}-qf"
    return sae["architecture"]


def plan_runs(cfg: SweepConfig) -> list[RunPlan]:
    """Every run of every phase, with unique names and resolvable `init_from` references."""
    plans: list[RunPlan] = []
    for phase in cfg.phases:
        for entry in phase.grid:
            plans.extend(expand_entry(dict(entry), phase.name, cfg.d_sae))
    seen: dict[str, str] = {}
    for plan in plans:
        if plan.name in seen:
            raise ConfigError(
                f"duplicate run name {plan.name!r} (phases {seen[plan.name]!r} and "
                f"{plan.phase!r}); give the grid entries distinct `name`s"
            )
        seen[plan.name] = plan.phase
    order = {p.name: i for i, p in enumerate(cfg.phases)}
    for plan in plans:
        ref = plan.init_from
        if ref is None or Path(ref).is_dir():
            continue
        run = ref.split("@")[0]
        if run not in seen or order[seen[run]] >= order[plan.phase]:
            raise ConfigError(
                f"run {plan.name!r}: init_from {ref!r} is neither a directory nor a run of an "
                "earlier phase; name an earlier run (RUN or RUN@STEP) or an SAE directory"
            )
    return plans


def with_ancestors(cfg: SweepConfig, runs: list[str]) -> set[str]:
    """`runs` and every run they are finetuned from (transitively): what must be trained so
    that those runs exist. An unknown name is an error naming the sweep's runs."""
    plans = {p.name: p for p in plan_runs(cfg)}
    unknown = [r for r in runs if r not in plans]
    if unknown:
        raise ConfigError(f"runs {unknown} are not in the sweep; choose from {sorted(plans)}")
    needed: set[str] = set()
    todo = list(runs)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        ref = plans[name].init_from
        if ref is not None and not Path(ref).is_dir():
            todo.append(ref.split("@")[0])
    return needed
