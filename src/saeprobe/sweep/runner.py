"""`saeprobe sweep`: train every run of each phase from one pass over its store, evaluate each
SAE on the store's held-out tail, and write the table and figures.

Restartable at any point: a phase whose SAEs are all saved is not retrained, an interrupted
phase resumes from its trainer checkpoint (bit-exact), and evaluated runs are not re-evaluated.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from saeprobe.activations.store import ActivationStore
from saeprobe.errors import ConfigError, DataError
from saeprobe.io_utils import atomic_write_json
from saeprobe.lm.models import load_model
from saeprobe.metrics.evaluate import (
    lm_batches,
    model_effects,
    reconstruction_metrics,
    save_frequencies,
    training_provenance,
)
from saeprobe.sae.auxk import uses_auxk
from saeprobe.sae.config import build_config
from saeprobe.sae.io import load_sae, read_cfg, sae_saved, trained_config
from saeprobe.sae.registry import make_config
from saeprobe.sweep.config import Phase, RunPlan, SweepConfig, plan_runs, with_ancestors
from saeprobe.sweep.outputs import write_outputs
from saeprobe.sweep.rollouts import ensure_rollouts, rollouts_name
from saeprobe.sweep.stores import ensure_store
from saeprobe.train import distributed, recipes
from saeprobe.train.config import RunSpec, TrainConfig
from saeprobe.train.from_store import schedule_defaults
from saeprobe.train.trainer import Trainer, resolve_device, snapshot_path

CONFIG_FILE = "sweep_config.json"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class SweepLayout:
    """Where everything of a sweep lives under its output directory."""

    def __init__(self, out: Path):
        self.out = out

    def sae(self, run: str) -> Path:
        return self.out / "saes" / run

    def eval(self, run: str) -> Path:
        return self.out / "evals" / f"{run}.json"

    def frequencies(self, run: str) -> Path:
        return self.out / "evals" / f"{run}.frequencies.npy"

    def checkpoints(self, phase: str, runs: list[str] | None = None) -> Path:
        """A phase's training checkpoints; a subset of its runs trains in its own folder, so
        that resuming never mixes two sets of SAEs."""
        if runs is None:
            return self.out / "checkpoints" / phase
        tag = hashlib.sha256("\n".join(sorted(runs)).encode()).hexdigest()[:10]
        return self.out / "checkpoints" / f"{phase}+{tag}"

    @property
    def snapshots(self) -> Path:
        return self.out / "snapshots"

    def init_from(self, ref: str | None) -> Path | None:
        if ref is None or Path(ref).is_dir():
            return None if ref is None else Path(ref)
        run, _, step = ref.partition("@")
        return snapshot_path(self.snapshots, run, int(step)) if step else self.sae(run)


def _config_record(cfg: SweepConfig) -> dict[str, Any]:
    """The config as stored in the sweep directory. Unset recipes are left out, so a sweep
    started before recipes existed still resumes."""
    data = cfg.model_dump(mode="json")
    for section in (data, *data["phases"]):
        if section.get("recipe") is None:
            section.pop("recipe", None)
    return data


def _claim(out: Path, cfg: SweepConfig) -> None:
    """Refuse to mix two different sweeps in one directory."""
    path = out / CONFIG_FILE
    current = _config_record(cfg)
    if path.exists():
        if json.loads(path.read_text(encoding="utf-8")) != current:
            raise ConfigError(
                f"{out} holds a sweep with another config; use a fresh --out, or restore the "
                f"config saved in {path}"
            )
        return
    atomic_write_json(path, current)


def run_sweep(
    cfg: SweepConfig,
    out: str | Path,
    progress: bool = True,
    log: Callable[[str], None] = _stderr,
    runs: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Train, evaluate and tabulate every phase. Under torchrun all ranks train (data-parallel)
    and rank 0 alone evaluates and writes; the others wait for it after each phase. With
    `runs`, only those runs and the runs they are finetuned from are trained and tabulated; a
    later call without `runs` trains the rest."""
    try:
        return _run_sweep(cfg, Path(out), progress, log, runs)
    finally:
        distributed.ranks.teardown()


def _run_sweep(cfg: SweepConfig, out: Path, progress: bool, log, runs) -> list[dict[str, Any]]:
    plans = every = plan_runs(cfg)
    if runs is not None:
        needed = with_ancestors(cfg, runs)
        plans = [p for p in plans if p.name in needed]
    layout = SweepLayout(out)
    distributed.world()  # under torchrun: one process group for the whole sweep
    main = distributed.is_main()
    if main:
        _claim(out, cfg)
    distributed.barrier()
    timings: dict[str, float] = {}
    for phase in cfg.phases:
        phase_plans = [p for p in plans if p.phase == phase.name]
        if not phase_plans:
            continue
        if all(layout.eval(p.name).exists() for p in phase_plans):
            log(f"phase {phase.name}: all {len(phase_plans)} runs done")
            continue
        store = open_store(cfg, phase.store, progress, log)
        train_rows, eval_rows = _split(store, cfg)
        untrained = [p for p in phase_plans if not sae_saved(layout.sae(p.name))]
        if untrained:
            log(f"phase {phase.name}: training {len(untrained)} SAEs on tokens {train_rows}")
            timings[phase.name] = _train_phase(
                cfg, phase, untrained, store, train_rows, layout, progress, log,
                whole_phase=len(untrained) == sum(p.phase == phase.name for p in every),
            )  # fmt: skip
        if not main:
            distributed.barrier()  # rank 0 evaluates this phase
            continue
        eval_name = phase.eval_store or phase.store
        if eval_name != phase.store:
            eval_store = open_store(cfg, eval_name, progress, log)
            _check_same_site(store, eval_store, phase)
            eval_rows = _split(eval_store, cfg)[1]
        else:
            eval_store = store
        log(
            f"phase {phase.name}: evaluating on {eval_rows[1] - eval_rows[0]} held-out tokens "
            f"of store {eval_name!r}"
        )
        _evaluate_phase(cfg, phase, phase_plans, eval_store, eval_rows, layout)
        distributed.barrier()
    if not main:
        return []
    rows = [json.loads(layout.eval(p.name).read_text(encoding="utf-8")) for p in plans]
    for row in rows:  # rows evaluated before these columns existed
        if "auxk" not in row:
            row |= _training_columns(Path(row["sae_dir"]))
    frequencies = {p.name: np.load(layout.frequencies(p.name)) for p in plans}
    write_outputs(out, cfg, rows, frequencies, timings)
    return rows


def open_store(cfg: SweepConfig, name: str, progress: bool, log) -> ActivationStore:
    """Store `name`, harvested first if need be; a `rollouts:NAME` store generates its chat
    data first (only when the store itself is needed)."""
    spec = cfg.stores[name]
    wanted = rollouts_name(spec.data)
    if wanted is not None:
        path = ensure_rollouts(wanted, cfg.rollouts[wanted], progress, log)
        spec = spec.model_copy(update={"data": str(path)})
    return ensure_store(name, spec, progress)


def _check_same_site(train: ActivationStore, held_out: ActivationStore, phase: Phase) -> None:
    a, b = train.manifest, held_out.manifest
    if (a.model, a.d_model, train.layers[0]) != (b.model, b.d_model, held_out.layers[0]):
        raise ConfigError(
            f"phase {phase.name!r} trains on {a.model} layer {train.layers[0]} but its eval_store "
            f"holds {b.model} layer {held_out.layers[0]}; evaluate on a store of the same site"
        )


def _split(store: ActivationStore, cfg: SweepConfig) -> tuple[tuple[int, int], tuple[int, int]]:
    n_train = store.n_tokens - cfg.eval_tokens
    if n_train < cfg.batch_size:
        raise DataError(
            f"store {store.path} has {store.n_tokens} tokens: after holding out eval_tokens="
            f"{cfg.eval_tokens} fewer than one batch ({cfg.batch_size}) is left to train on; "
            "raise max_tokens or lower eval_tokens"
        )
    return (0, n_train), (n_train, store.n_tokens)


def _train_phase(
    cfg, phase: Phase, plans: list[RunPlan], store, rows, layout, progress, log, whole_phase=True
) -> float:
    from saeprobe.train.finetune import with_inherited

    source = store.source(cfg.batch_size, layer=None, seed=cfg.seed, rows=rows)
    recipe = cfg.phase_recipe(phase)
    given = {**cfg.train, **phase.train}
    preset_train = recipes.train_values(recipe, given)
    train = preset_train | given
    train["steps"] = phase.steps or train.get("steps") or source.per_epoch
    checkpoints = layout.checkpoints(phase.name, None if whole_phase else [p.name for p in plans])
    train = schedule_defaults(train, checkpoints)
    train |= {
        "seed": cfg.seed,
        "progress": progress,
        "snapshot_steps": phase.snapshot_steps,
        "snapshot_dir": layout.snapshots,
    }
    train_cfg = build_config(TrainConfig, train, what=f"training settings of phase {phase.name!r}")
    for warning in recipes.check_run_length(recipe, preset_train, train_cfg.steps):
        log(f"phase {phase.name}: {warning}")
    specs, records = [], {}
    for p in plans:
        # Settings the entry leaves out (k, the pre-encoder bias) come from the SAE it
        # finetunes (an earlier phase has saved it by now), then from the recipe.
        settings = with_inherited(p.sae, layout.init_from(p.init_from))
        preset_sae = recipes.sae_values(recipe, settings["architecture"], settings)
        records[p.name] = recipes.record(recipe, preset_sae, preset_train)
        specs.append(
            RunSpec(
                name=p.name,
                sae=make_config({"d_in": store.d_model, **preset_sae, **settings}),
                init_from=layout.init_from(p.init_from),
                reinit_fraction=p.reinit_fraction,
                lr=p.lr,
            )
        )
    resume = checkpoints.exists()
    result = Trainer(train_cfg, specs).fit(source, resume=resume)
    meta = {
        "source": "saeprobe sweep",
        "model_name": store.manifest.model,
        "hook_layer": store.layers[0],
        "context_size": store.manifest.context,
        "dataset_path": store.manifest.data,
        "chat": store.manifest.chat,
        "phase": phase.name,
        **training_provenance(store, rows),
    }
    for p in plans if distributed.is_main() else []:
        run_meta = meta | {"init_from": p.init_from}
        if records[p.name] is not None:
            run_meta["recipe"] = records[p.name]
        result.save(p.name, layout.sae(p.name), metadata=run_meta)
    return round(result.seconds, 2)


def _training_columns(sae_dir: Path) -> dict[str, Any]:
    """Table columns read back from a saved SAE: the AuxK coefficient it trained with (the
    config it was trained as, for a BatchTopK saved as a JumpReLU) and its recipe."""
    trained = trained_config(sae_dir)
    recipe = read_cfg(sae_dir).get("metadata", {}).get("recipe")
    return {
        "auxk": uses_auxk(trained),
        "aux_coefficient": trained.get("aux_coefficient"),
        "recipe": recipe.get("name") if isinstance(recipe, dict) else None,
    }


def _evaluate_phase(cfg, phase: Phase, plans, store: ActivationStore, rows, layout) -> None:
    pending = [p for p in plans if not layout.eval(p.name).exists()]
    if not pending:
        return
    device = resolve_device(cfg.train.get("device", "auto"))
    layer = store.layers[0]
    saes = {p.name: load_sae(layout.sae(p.name)) for p in pending}
    t0 = time.perf_counter()
    if cfg.lm_windows:
        lm = load_model(store.manifest.model, device=device)
        batches, held_out = lm_batches(lm, store, None, None, cfg.lm_windows, batch_size=8)
        outliers = store.manifest.outlier_factor
        effects = model_effects(saes, layer, lm, batches, held_out, outliers)
    else:
        effects = {name: {"lm_loss_reason": "lm_windows is 0"} for name in saes}
    shared_seconds = (time.perf_counter() - t0) / len(pending)
    for p in pending:
        t0 = time.perf_counter()
        metrics, freqs = reconstruction_metrics(saes[p.name], store, layer, rows, device=device)
        save_frequencies(layout.frequencies(p.name), freqs)
        row = {
            "name": p.name,
            "phase": phase.name,
            "series": p.series,
            **p.sae,
            "init_from": p.init_from,
            "reinit_fraction": p.reinit_fraction,
            "steps": read_cfg(layout.sae(p.name)).get("metadata", {}).get("train_steps"),
            **_training_columns(layout.sae(p.name)),
            "store": phase.store,
            "eval_store": phase.eval_store or phase.store,
            **metrics,
            **effects[p.name],
            "sae_dir": str(layout.sae(p.name)),
            "frequencies_file": str(layout.frequencies(p.name)),
            "eval_seconds": round(time.perf_counter() - t0 + shared_seconds, 2),
        }
        atomic_write_json(layout.eval(p.name), row)
