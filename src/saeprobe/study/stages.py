"""The stages of a study, in the order the data flows, each a call into one library stage.

    harvest -> sweep (train + evaluate) -> dataset -> probe -> latents -> autointerp -> debug
    -> report

A stage names the settings its outputs depend on (hashed into its key with the keys of the
stages it reads) and returns a small summary for its record. Stages that resume internally (the
harvest, the sweep, autointerp) are simply called again after a kill.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from saeprobe.study.config import StudyConfig
from saeprobe.study.context import StudyContext


@dataclass(frozen=True)
class Stage:
    name: str
    reads: tuple[str, ...]
    settings: Callable[[StudyConfig], Any]
    run: Callable[[StudyContext], dict[str, Any]]
    enabled: Callable[[StudyConfig], bool] = lambda cfg: True
    always: bool = False  # cheap and reads everything: re-run every time


def _dump(model) -> Any:
    return None if model is None else model.model_dump(mode="json")


def needed_plans(cfg: StudyConfig):
    """The sweep's runs this study trains: the named ones and what they are finetuned from."""
    from saeprobe.sweep.config import plan_runs, with_ancestors

    needed = None if cfg.runs_needed is None else with_ancestors(cfg.sweep, cfg.runs_needed)
    return [p for p in plan_runs(cfg.sweep) if needed is None or p.name in needed]


def needed_stores(cfg: StudyConfig) -> list[str]:
    phases = {p.phase for p in needed_plans(cfg)}
    names = []
    for phase in cfg.sweep.phases:
        if phase.name in phases:
            names += [phase.store, phase.eval_store or phase.store]
    if cfg.interp is not None and cfg.interp.store:
        names.append(cfg.interp.store)
    return list(dict.fromkeys(names))


def _harvest_settings(cfg: StudyConfig) -> Any:
    """Store keys hash the stores' settings and the size and time of the files they read, so an
    edited corpus or prompt file re-runs the harvest (and everything after it)."""
    from saeprobe.sweep.stores import file_stamp, store_key

    stores = {name: store_key(cfg.sweep.stores[name]) for name in needed_stores(cfg)}
    rollouts = {name: [_dump(spec), file_stamp(spec.prompts)]
                for name, spec in cfg.sweep.rollouts.items()}  # fmt: skip
    return [stores, rollouts]


def _dataset_settings(cfg: StudyConfig) -> Any:
    from saeprobe.data.prompts.cached import dataset_key

    return dataset_key(_dataset_config(cfg))


def _harvest(ctx: StudyContext) -> dict[str, Any]:
    from saeprobe.sweep.runner import open_store

    stores = {}
    for name in needed_stores(ctx.cfg):
        store = open_store(ctx.cfg.sweep, name, ctx.progress, ctx.log)
        stores[name] = {"path": str(store.path), "tokens": store.n_tokens}
    wrote = ", ".join(f"{n} ({s['tokens']} tokens)" for n, s in stores.items())
    return {"stores": stores, "wrote": wrote}


def _sweep(ctx: StudyContext) -> dict[str, Any]:
    from saeprobe.sweep.runner import run_sweep

    rows = run_sweep(
        ctx.cfg.sweep, ctx.sweep_dir, progress=ctx.progress, log=ctx.log,
        runs=ctx.cfg.runs_needed,
    )  # fmt: skip
    wrote = f"{ctx.sweep_dir}/sweep.csv ({len(rows)} SAEs)"
    return {"runs": [r["name"] for r in rows], "wrote": wrote}


def _dataset_config(cfg: StudyConfig):
    from saeprobe.data.prompts.default_prompts import default_dataset_config

    return cfg.dataset or default_dataset_config()


def _dataset(ctx: StudyContext) -> dict[str, Any]:
    from saeprobe.data.prompts.build import build_dataset

    summary = build_dataset(_dataset_config(ctx.cfg), ctx.dataset_dir)
    ctx.log(summary.table)
    return {"rows": summary.n_rows, "wrote": str(summary.dataset_path)}


def _sae_dirs(ctx: StudyContext, runs: list[str]) -> dict[str, str]:
    from saeprobe.sweep.runner import SweepLayout

    layout = SweepLayout(ctx.sweep_dir)
    return {run: str(layout.sae(run)) for run in runs}


def _probe(ctx: StudyContext) -> dict[str, Any]:
    from saeprobe.probes.benchmark import ProbeConfig, run_probe
    from saeprobe.sae.config import build_config

    settings = ctx.cfg.probe.model_dump(mode="json", exclude={"saes", "dataset", "extra_saes"})
    extra = {name: str(path) for name, path in ctx.cfg.probe.extra_saes.items()}
    probe_cfg = build_config(
        ProbeConfig,
        settings
        | {
            "dataset": _dataset_config(ctx.cfg).model_dump(mode="json"),
            "saes": {"dirs": _sae_dirs(ctx, ctx.cfg.probe.saes) | extra},
        },
        what="the study's probe settings",
    )
    run_probe(probe_cfg, ctx.probe_dir, progress=ctx.progress, log=ctx.log)
    return {"wrote": f"{ctx.probe_dir}/results.json"}


def _interp_settings(cfg: StudyConfig, out) -> dict[str, Any]:
    interp = cfg.interp
    return {
        "runs": cfg.interp_runs,
        "store": interp.store,
        "max_tokens": interp.max_tokens,
        "latents": {"seed": cfg.seed, **interp.latents},
        "autointerp": {"seed": cfg.seed, **interp.autointerp},
        "out": out,
    }


def _autointerp_config(ctx: StudyContext):
    from saeprobe.interp.sweep import SweepAutointerpConfig
    from saeprobe.sae.config import build_config

    data = _interp_settings(ctx.cfg, ctx.path("autointerp"))
    data |= {"sweep_dir": ctx.sweep_dir, "progress": ctx.progress}
    return build_config(SweepAutointerpConfig, data, what="the study's interp settings")


def _latents(ctx: StudyContext) -> dict[str, Any]:
    from saeprobe.interp.sweep import ensure_sweep_records

    found = ensure_sweep_records(_autointerp_config(ctx), log=ctx.log)
    return {
        "records": {run: str(path) for run, (path, _) in found.items()},
        "wrote": f"{ctx.sweep_dir}/autointerp/latents ({len(found)} SAEs)",
    }


def _autointerp(ctx: StudyContext) -> dict[str, Any]:
    from saeprobe.interp.sweep import run_autointerp_sweep

    summary = run_autointerp_sweep(_autointerp_config(ctx), log=ctx.log)
    return {
        "explainer": summary["explainer"],
        "wrote": f"{ctx.path('autointerp')}/autointerp_sweep.md",
    }


def _debug(ctx: StudyContext) -> dict[str, Any]:
    from saeprobe.interp.debug_dataset import DebugConfig, run_debug_dataset
    from saeprobe.sae.config import build_config

    run = ctx.cfg.debug_run
    settings = ctx.cfg.debug.model_dump(mode="json", exclude={"saes", "dataset", "sae"})
    debug_cfg = build_config(
        DebugConfig,
        settings
        | {
            "dataset": _dataset_config(ctx.cfg).model_dump(mode="json"),
            "saes": {"dirs": _sae_dirs(ctx, [run])},
            "sae": run,
        },
        what="the study's debug settings",
    )
    run_debug_dataset(debug_cfg, ctx.path("debug"), progress=ctx.progress, log=ctx.log)
    return {"sae": run, "wrote": f"{ctx.path('debug')}/findings.md"}


def _report(ctx: StudyContext) -> dict[str, Any]:
    from saeprobe.report import write_report

    files = write_report(ctx.out)
    return {"html": str(files.html), "results": str(files.results), "wrote": str(files.html)}


STAGES: list[Stage] = [
    Stage("harvest", (), _harvest_settings, _harvest),
    Stage("sweep", ("harvest",), lambda c: [_dump(c.sweep), c.runs_needed], _sweep),
    Stage("dataset", (), _dataset_settings, _dataset),
    Stage("probe", ("sweep", "dataset"), lambda c: _dump(c.probe), _probe),
    Stage("latents", ("sweep",), lambda c: _interp_settings(c, None), _latents,
          enabled=lambda c: c.interp is not None),
    Stage("autointerp", ("latents",), lambda c: _interp_settings(c, None), _autointerp,
          enabled=lambda c: c.interp is not None),
    Stage("debug", ("sweep", "dataset"), lambda c: [_dump(c.debug), c.debug_run], _debug,
          enabled=lambda c: c.debug is not None),
    Stage("report", ("probe", "autointerp", "debug"), lambda c: c.title, _report, always=True),
]  # fmt: skip
