"""The setup section: what was run, on what, with which software, and how long each stage took."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from saeprobe.report import html as h
from saeprobe.report.study_files import STAGES, Study

PACKAGES = ("saeprobe", "torch", "transformers", "numpy", "scikit-learn")


def versions() -> dict[str, str | None]:
    """Installed versions (of the environment writing the report), read without importing."""
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _stores(config: dict[str, Any]) -> str:
    stores = (config.get("sweep") or {}).get("stores") or {}
    parts = []
    for name, spec in stores.items():
        spec = spec or {}
        tokens = spec.get("max_tokens")
        size = f", {tokens:,} tokens" if isinstance(tokens, int) else ""
        parts.append(f"{name}: {spec.get('data')}{size}")
    return "; ".join(parts)


def _splits(study: Study) -> dict[str, dict[str, Any]]:
    """Rows per split: the dataset summary, else the probe stage's split sizes."""
    if study.dataset_summary and study.dataset_summary.get("splits"):
        return {
            name: {"rows": s.get("rows"), "positive": s.get("harmful"),
                   "negative": s.get("harmless"), "base_prompts": s.get("base_prompts")}
            for name, s in study.dataset_summary["splits"].items()
        }  # fmt: skip
    if study.probe:
        splits = study.probe["config"].get("splits") or {}
        return {
            name: {"rows": s.get("n"), "positive": s.get("n_pos"),
                   "negative": (s.get("n") or 0) - (s.get("n_pos") or 0), "base_prompts": None}
            for name, s in splits.items()
        }  # fmt: skip
    return {}


def _autointerp(study: Study) -> str | None:
    data = study.autointerp
    if not data:
        return None
    settings = (data.get("config") or {}).get("autointerp") or {}
    methods = ", ".join(settings.get("scoring") or [])
    n = settings.get("n_latents")
    return (
        f"explainer {data.get('explainer')}, scorer {data.get('scorer')}"
        + (f", {n} latents per SAE" if n else "")
        + (f", scored by {methods}" if methods else "")
    )


def setup_summary(study: Study) -> dict[str, Any]:
    """The setup as data: results.json carries it and the section renders it."""
    cfg = study.config
    sweep = cfg.get("sweep") or {}
    probe_cfg = study.probe["config"] if study.probe else {}
    return {
        "title": cfg.get("title"),
        "model": cfg.get("model"),
        "layer": cfg.get("layer"),
        "device": cfg.get("device"),
        "seeds": {
            "study": cfg.get("seed"),
            "sweep": sweep.get("seed"),
            "dataset": (cfg.get("dataset") or {}).get("seed"),
            "probe": probe_cfg.get("seeds"),
        },
        "stores": _stores(cfg),
        "d_sae": sweep.get("d_sae"),
        "n_saes": len(study.sweep_rows),
        "d_model": probe_cfg.get("d_model"),
        "splits": _splits(study),
        "poolings": [p.pooling for p in study.probes],
        "n_bootstrap": probe_cfg.get("n_bootstrap"),
        "autointerp": _autointerp(study),
        "versions": versions(),
        "stage_seconds": {
            name: study.stages[name].get("seconds") for name in STAGES if name in study.stages
        },
    }


def setup_section(study: Study, summary: dict[str, Any]) -> str:
    seeds = summary["seeds"]
    facts = [
        ("model", summary["model"]),
        ("layer", summary["layer"]),
        ("device", summary["device"]),
        ("activation stores", summary["stores"]),
        ("SAEs", f"{summary['n_saes']} (d_sae {summary['d_sae']})" if summary["n_saes"] else ""),
        ("d_model", summary["d_model"]),
        ("poolings", ", ".join(summary["poolings"])),
        ("bootstrap resamples", summary["n_bootstrap"]),
        ("autointerp", summary["autointerp"]),
        ("seeds", ", ".join(f"{k} {v}" for k, v in seeds.items() if v is not None)),
        ("versions", ", ".join(f"{k} {v}" for k, v in summary["versions"].items() if v)),
    ]
    parts = [h.key_values(facts)]
    splits = summary["splits"]
    if splits:
        parts.append("<h3>Data</h3>")
        parts.append(
            h.table(
                ["split", "prompts", "harmful", "harmless", "base prompts"],
                [
                    [name, s["rows"], s["positive"], s["negative"], s["base_prompts"]]
                    for name, s in splits.items()
                ],  # fmt: skip
            )
        )
        groups = (study.dataset_summary or {}).get("groups") or []
        if groups:
            parts.append(
                h.table(
                    ["split", "source", "transformation", "harmful", "harmless"],
                    [[g.get("split"), g.get("source"), g.get("transform"), g.get("harmful"),
                      g.get("harmless")] for g in groups],
                    caption="Prompts per source and transformation",
                )
            )  # fmt: skip
    else:
        parts.append(
            h.missing("no dataset summary: the dataset and probe stages have not run, so the "
                      "data sizes are left out")
        )  # fmt: skip
    parts.append("<h3>Stages</h3>")
    rows = []
    for name in STAGES:
        record = study.stages.get(name)
        if record is None:
            rows.append([name, None, "not run (or disabled)"])
            continue
        wrote = (record.get("summary") or {}).get("wrote")
        seconds = record.get("seconds")
        shown = f"{seconds:.1f}" if isinstance(seconds, int | float) else None
        rows.append([name, shown, str(wrote) if wrote else ""])
    parts.append(h.table(["stage", "seconds", "wrote"], rows))
    parts.append(
        h.paragraph(
            "Versions are those of the environment that wrote this report; seconds are those "
            "of the run that produced each stage's outputs (a reused stage keeps its time).",
            cls="muted",
        )
    )
    return "".join(parts)
