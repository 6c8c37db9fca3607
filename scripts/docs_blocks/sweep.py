"""`sweep-table`: rows of a `saeprobe sweep` run's `sweep.json`.

`columns=` picks the metrics (keys of a sweep row, comma-separated; default below) and
`runs=` the rows (names, comma-separated; default every row in the sweep's order).
"""

from __future__ import annotations

from pathlib import Path

from . import Block, BlockError, kind, read_json
from .fmt import metric, table

HEADERS = {
    "name": "run",
    "series": "series",
    "architecture": "architecture",
    "eval_store": "eval on",
    "steps": "steps",
    "l0": "L0",
    "fvu": "FVU",
    "nmse": "NMSE",
    "delta_lm_loss": "ΔLM",
    "kl_divergence": "KL",
    "ce_loss_recovered": "CE rec.",
    "dead_fraction": "dead",
    "n_high_frequency": "HF",
    "embedding_cosine": "embedding cos",
    "auxk": "AuxK",
}
DEFAULT_COLUMNS = (
    "name,eval_store,steps,l0,fvu,delta_lm_loss,kl_divergence,ce_loss_recovered,"
    "dead_fraction,n_high_frequency"
)


@kind("sweep-table")
def sweep_table(run: Path, params: dict[str, str]) -> Block:
    data = read_json(run / "sweep.json")
    rows = data["rows"] if isinstance(data, dict) else data
    columns = params.get("columns", DEFAULT_COLUMNS).split(",")
    wanted = params.get("runs")
    if wanted:
        by_name = {row["name"]: row for row in rows}
        missing = [name for name in wanted.split(",") if name not in by_name]
        if missing:
            raise BlockError(f"{run / 'sweep.json'} has no run {', '.join(missing)}")
        rows = [by_name[name] for name in wanted.split(",")]
    body = [[metric(row.get(col)) for col in columns] for row in rows]
    return Block(table([HEADERS.get(col, col) for col in columns], body))
