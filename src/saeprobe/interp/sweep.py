"""`saeprobe autointerp-sweep SWEEP_DIR`: autointerp for every SAE of a finished sweep, and the
study's figures.

Per SAE: records (`saeprobe latents`) over the store its phase is evaluated on (the phase's
`eval_store`, else its training store: the sweep's cached store, harvested again only if the
cache was cleared), then `saeprobe autointerp` with the same explainer, scorer and sampling for
every SAE. Both steps resume: records whose key matches are reused, and each autointerp run
picks up its own progress file.

Records go to SWEEP_DIR/autointerp/latents/<run> (they depend on the SAE, the store and the
latents settings, not on the explainer, so every explainer shares them). Writes OUT (default
SWEEP_DIR/autointerp/<explainer>) with one folder per SAE (`<run>/autointerp.json` and the
SAE's latent dashboard `<run>/dashboard.html`),
`autointerp_sweep.json` / `.md` (one row per SAE:
series, L0, uniform and frequency-weighted means with intervals per method), and the figures
`score_vs_l0_<method>.png` and `score_vs_frequency_<method>.png` (JumpReLU against JumpReLU-QF,
when the sweep has them; otherwise every JumpReLU-family series it has).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from saeprobe.errors import DataError
from saeprobe.interp.autointerp import AutointerpConfig, run_autointerp
from saeprobe.interp.collect import LatentsConfig, collect_latents, records_key
from saeprobe.interp.dashboard import write_dashboard
from saeprobe.interp.plots import plot_score_vs_frequency, plot_score_vs_l0
from saeprobe.interp.records import META_FILE
from saeprobe.interp.score import METHODS
from saeprobe.io_utils import atomic_write_json, atomic_write_text
from saeprobe.sae.config import build_config
from saeprobe.sweep.config import SweepConfig, plan_runs
from saeprobe.sweep.runner import CONFIG_FILE, SweepLayout, open_store


class SweepAutointerpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sweep_dir: Path
    out: Path | None = None
    runs: list[str] = Field(default_factory=list, description="only these runs [all]")
    store: str | None = Field(None, description="read every SAE on this store of the sweep")
    max_tokens: int | None = Field(None, gt=0, description="tokens of the store read per SAE")
    latents: dict[str, Any] = Field(default_factory=dict, description="LatentsConfig settings")
    autointerp: dict[str, Any] = Field(default_factory=dict, description="AutointerpConfig")
    progress: bool = True


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "run"


def _sweep(sweep_dir: Path) -> SweepConfig:
    path = sweep_dir / CONFIG_FILE
    if not path.is_file():
        raise DataError(
            f"{sweep_dir} is not a sweep directory (no {CONFIG_FILE}); run saeprobe sweep "
            f"CONFIG.yaml --out {sweep_dir} first"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise DataError(f"{path} is corrupt; re-run the sweep into a fresh --out") from None
    return build_config(SweepConfig, data, what=f"sweep config {path}")


def _eval_row(layout: SweepLayout, run: str) -> dict[str, Any]:
    path = layout.eval(run)
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {}


def _plans(cfg: SweepAutointerpConfig, sweep: SweepConfig, layout: SweepLayout):
    plans = [p for p in plan_runs(sweep) if not cfg.runs or p.name in cfg.runs]
    missing = [r for r in cfg.runs if r not in {p.name for p in plan_runs(sweep)}]
    if missing:
        raise DataError(f"runs {missing} are not in the sweep {cfg.sweep_dir}")
    plans = [p for p in plans if (layout.sae(p.name) / "cfg.json").is_file()]
    if not plans:
        raise DataError(
            f"the sweep directory {cfg.sweep_dir} holds no trained SAEs (saes/*/cfg.json); "
            "finish the sweep first"
        )
    return plans


def ensure_sweep_records(cfg: SweepAutointerpConfig, log=print) -> dict[str, tuple[Path, str]]:
    """Per SAE of the sweep (or of `cfg.runs`): its latent records, collected unless records
    with the same key exist. Returns run -> (records directory, store name)."""
    sweep = _sweep(cfg.sweep_dir)
    layout = SweepLayout(cfg.sweep_dir)
    phases = {ph.name: ph for ph in sweep.phases}
    stores: dict[str, Any] = {}
    found = {}
    for plan in _plans(cfg, sweep, layout):
        phase = phases[plan.phase]
        store_name = cfg.store or phase.eval_store or phase.store
        if store_name not in sweep.stores:
            raise DataError(f"store {store_name!r} is not defined in the sweep's config")
        if store_name not in stores:
            # Through the sweep, so that a `rollouts:NAME` store finds its generated chat data.
            stores[store_name] = open_store(sweep, store_name, cfg.progress, log)
        store = stores[store_name]
        records = cfg.sweep_dir / "autointerp" / "latents" / plan.name
        lat_cfg = build_config(
            LatentsConfig,
            {
                **cfg.latents,
                "sae": layout.sae(plan.name),
                "acts": store.path,
                "out": records,
                "max_tokens": cfg.max_tokens,
                "progress": cfg.progress,
            },
            what="latents settings",
        )
        meta_path = records / META_FILE
        want = records_key(layout.sae(plan.name), store, lat_cfg)
        if not (meta_path.is_file() and json.loads(meta_path.read_text())["key"] == want):
            log(f"{plan.name}: latents on store {store_name}")
            collect_latents(lat_cfg, log=log)
        found[plan.name] = (records, store_name)
    return found


def run_autointerp_sweep(cfg: SweepAutointerpConfig, api_key: str | None = None, log=print):
    t0 = time.perf_counter()
    sweep = _sweep(cfg.sweep_dir)
    layout = SweepLayout(cfg.sweep_dir)
    plans = {p.name: p for p in _plans(cfg, sweep, layout)}
    explainer = cfg.autointerp.get("explainer", AutointerpConfig.model_fields["explainer"].default)
    out = cfg.out or cfg.sweep_dir / "autointerp" / _slug(explainer)
    rows = []
    for name, (records, store_name) in ensure_sweep_records(cfg, log).items():
        plan = plans[name]
        run_dir = out / plan.name
        ai_cfg = build_config(
            AutointerpConfig,
            {
                **cfg.autointerp,
                "latents": records,
                "out": run_dir,
                "sae": layout.sae(plan.name),
                "progress": cfg.progress,
            },
            what="autointerp settings",
        )
        log(f"{plan.name}: autointerp ({ai_cfg.explainer} / {ai_cfg.scorer_spec})")
        report = run_autointerp(ai_cfg, api_key=api_key, log=log)
        write_dashboard(records, run_dir / "dashboard.html", run_dir)
        ev = _eval_row(layout, plan.name)
        rows.append(
            {
                "name": plan.name,
                "series": plan.series,
                "architecture": plan.sae["architecture"],
                "l0": ev.get("l0"),
                "l0_records": _records_l0(records),
                "fvu": ev.get("fvu"),
                "store": store_name,
                "counts": report["counts"],
                **{m: _brief(a) for m, a in report["scores"].items()},
            }
        )
    methods = [m for m in METHODS if m in rows[0]]
    for row in rows:  # an SAE never evaluated by the sweep still has the records' L0
        if row["l0"] is None:
            row["l0"] = row["l0_records"]
    figures = _figures(rows, methods, out, explainer)
    summary = {
        "sweep_dir": str(cfg.sweep_dir),
        "explainer": explainer,
        "scorer": cfg.autointerp.get("scorer") or explainer,
        "rows": rows,
        "figures": figures,
        "seconds": round(time.perf_counter() - t0, 2),
        "config": json.loads(cfg.model_dump_json()),
    }
    atomic_write_json(out / "autointerp_sweep.json", summary)
    atomic_write_text(out / "autointerp_sweep.md", sweep_markdown(rows, methods, explainer))
    log(f"{len(rows)} SAEs -> {out}/autointerp_sweep.md")
    return summary


def _records_l0(path: Path) -> float | None:
    meta = path / META_FILE
    return json.loads(meta.read_text())["mean_l0"] if meta.is_file() else None


def _brief(agg: dict[str, Any]) -> dict[str, Any]:
    keep = ("n", "uniform_mean", "uniform_mean_ci_low", "uniform_mean_ci_high",
            "frequency_weighted_mean", "frequency_weighted_mean_ci_low",
            "frequency_weighted_mean_ci_high", "per_quantile", "auroc_uniform_mean",
            "auroc_frequency_weighted_mean")  # fmt: skip
    return {k: agg[k] for k in keep if k in agg}


def _qf_series(rows: list[dict[str, Any]]) -> list[str]:
    series = list(dict.fromkeys(r["series"] for r in rows if r["architecture"] == "jumprelu"))
    plain = [s for s in series if "QF" not in s]
    qf = [s for s in series if "QF" in s]
    return plain[:1] + qf[:1] if plain and qf else series


def _figures(rows, methods, out: Path, explainer: str) -> dict[str, str]:
    figures: dict[str, str] = {}
    for m in methods:
        try:
            p = plot_score_vs_l0(rows, out / f"score_vs_l0_{m}.png", m,
                                 title=f"autointerp ({m}, explainer {explainer}) vs L0")  # fmt: skip
            figures[f"score_vs_l0_{m}"] = str(p)
        except DataError:
            pass
        series = _qf_series(rows)
        if series:
            try:
                p = plot_score_vs_frequency(
                    rows, out / f"score_vs_frequency_{m}.png", m, series,
                    title=f"{m} score by latent frequency: {' vs '.join(series)}",
                )  # fmt: skip
                figures[f"score_vs_frequency_{m}"] = str(p)
            except DataError:
                pass
    return figures


def _ci(a: dict[str, Any], key: str) -> str:
    v = a.get(key)
    if v is None:
        return "–"
    return f"{v:.3f} [{a[key + '_ci_low']:.3f}, {a[key + '_ci_high']:.3f}]"


def sweep_markdown(rows, methods, explainer: str) -> str:
    lines = [f"# Autointerp across the sweep (explainer {explainer})", ""]
    for m in methods:
        lines += [f"## {m}", "", "| SAE | series | L0 | n | uniform | frequency-weighted |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for r in rows:
            a = r.get(m) or {}
            l0 = f"{r['l0']:.3g}" if r.get("l0") is not None else "–"
            lines.append(
                f"| {r['name']} | {r['series']} | {l0} | {a.get('n', 0)} | "
                f"{_ci(a, 'uniform_mean')} | {_ci(a, 'frequency_weighted_mean')} |"
            )
        lines.append("")
    return "\n".join(lines)
