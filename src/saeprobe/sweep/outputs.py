"""A finished sweep's table (CSV and JSON) and figures, one Pareto plot and one histogram
figure per phase."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from saeprobe.io_utils import atomic_write_json, atomic_write_text
from saeprobe.metrics.frequency import HIGH_FREQUENCY
from saeprobe.sweep.config import SweepConfig
from saeprobe.sweep.plots import plot_frequency_histograms, plot_pareto

# Leading CSV columns in this order; any other keys follow alphabetically.
COLUMNS = (
    "name",
    "phase",
    "series",
    "architecture",
    "d_sae",
    "k",
    "l1_coefficient",
    "sparsity_coefficient",
    "sparsity_penalty",
    "frequency_scale",
    "auxk",
    "aux_coefficient",
    "recipe",
    "init_from",
    "reinit_fraction",
    "steps",
    "l0",
    "l0_median",
    "fvu",
    "nmse",
    "cosine",
    "explained_variance",
    "dead_fraction",
    "n_high_frequency",
    "frac_high_frequency",
    "embedding_cosine",
    "delta_lm_loss",
    "ce_loss_recovered",
    "kl_divergence",
    "sae_dir",
)


# Panels of the Pareto figure; the LM metrics appear when the model is a causal LM.
PARETO_METRICS = ("fvu", "delta_lm_loss", "kl_divergence")


def table_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    extra = sorted({k for row in rows for k in row} - set(COLUMNS))
    return [*COLUMNS, *extra]


# The columns of sweep.md, the table to read (sweep.csv has them all).
SUMMARY_COLUMNS = (
    ("name", "run"),
    ("eval_store", "eval on"),
    ("steps", "steps"),
    ("auxk", "AuxK"),
    ("l0", "L0"),
    ("fvu", "FVU"),
    ("delta_lm_loss", "ΔLM"),
    ("kl_divergence", "KL"),
    ("ce_loss_recovered", "CE rec."),
    ("embedding_cosine", "emb. cos"),
    ("dead_fraction", "dead"),
    ("n_high_frequency", "HF"),
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
    return str(value)


def to_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A markdown table of the main metrics; columns no row has (e.g. ΔLM for an encoder) are
    left out."""
    columns = [(k, h) for k, h in SUMMARY_COLUMNS if any(r.get(k) is not None for r in rows)]
    lines = [
        "| " + " | ".join(h for _, h in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(_cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=table_columns(rows), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def write_outputs(
    out: Path,
    cfg: SweepConfig,
    rows: list[dict[str, Any]],
    frequencies: Mapping[str, np.ndarray],
    timings: Mapping[str, float],
) -> dict[str, Path]:
    atomic_write_text(out / "sweep.csv", to_csv(rows))
    atomic_write_text(out / "sweep.md", to_markdown(rows))
    atomic_write_json(
        out / "sweep.json",
        {
            "rows": rows,
            "train_seconds_this_invocation": dict(timings),
            "config": cfg.model_dump(mode="json"),
        },
    )
    figures = {}
    eval_stores = {r.get("eval_store") for r in rows}
    if len(cfg.phases) > 1 and len(eval_stores) == 1:
        # Every run judged on the same data (e.g. chat variants): one figure, a point per run.
        figures["pareto-all"] = plot_pareto(
            rows, out / "pareto-all.png", y=PARETO_METRICS, series="name",
            title=f"all {len(rows)} SAEs, evaluated on {eval_stores.pop()}",
        )  # fmt: skip
    for phase in cfg.phases:
        phase_rows = [r for r in rows if r["phase"] == phase.name]
        title = f"phase {phase.name}: {len(phase_rows)} SAEs"
        figures[f"pareto-{phase.name}"] = plot_pareto(
            phase_rows, out / f"pareto-{phase.name}.png", y=PARETO_METRICS, title=title
        )
        panels: dict[str, list[tuple[str, np.ndarray]]] = {}
        for row in sorted(phase_rows, key=lambda r: r["l0"]):
            label = f"L0={row['l0']:.1f} ({row['n_high_frequency']} HF)"
            panels.setdefault(row["series"], []).append((label, frequencies[row["name"]]))
        figures[f"frequencies-{phase.name}"] = plot_frequency_histograms(
            panels, out / f"frequencies-{phase.name}.png", threshold=HIGH_FREQUENCY, title=title
        )
    return figures
