"""Block kinds over interpretability outputs.

- `autointerp-sweep`: `autointerp_sweep.json` of `saeprobe autointerp-sweep` (the run dir
  is its OUT), one table per `method=` (default simulation).
- `debug-findings`: `findings.json` of `saeprobe debug-dataset`.
"""

from __future__ import annotations

from pathlib import Path

from . import Block, BlockError, kind, read_json
from .fmt import MISSING, interval, metric, num, percent, signed, table


@kind("autointerp-sweep")
def autointerp_sweep(run: Path, params: dict[str, str]) -> Block:
    data = read_json(run / "autointerp_sweep.json")
    method = params.get("method", "simulation")
    rows = []
    for row in data.get("rows", []):
        score = row.get(method)
        if score is None:
            raise BlockError(f"{run / 'autointerp_sweep.json'} has no {method} scores")
        rows.append(
            [
                row["name"],
                row.get("series", MISSING),
                metric(row.get("l0")),
                str(score.get("n", MISSING)),
                interval(
                    score.get("uniform_mean"),
                    score.get("uniform_mean_ci_low"),
                    score.get("uniform_mean_ci_high"),
                ),
                interval(
                    score.get("frequency_weighted_mean"),
                    score.get("frequency_weighted_mean_ci_low"),
                    score.get("frequency_weighted_mean_ci_high"),
                ),
            ]
        )
    headers = ["SAE", "series", "L0", "n", "uniform", "frequency-weighted"]
    return Block(table(headers, rows))


@kind("debug-findings")
def debug_findings(run: Path, params: dict[str, str]) -> Block:
    findings = read_json(run / "findings.json")
    if not isinstance(findings, list):
        raise BlockError(f"{run / 'findings.json'} is not a list of findings")
    rows = []
    for f in findings:
        pattern = f.get("pattern")
        rows.append(
            [
                str(f["rank"]),
                str(f["latent"]),
                signed(f.get("mean_diff"), 4),
                num(f.get("auroc")),
                pattern or MISSING,
                percent(f.get("rate_pos")) if pattern else MISSING,
                percent(f.get("rate_neg")) if pattern else MISSING,
                f"{f.get('n_active_pos', MISSING)} / {f.get('n_active_neg', MISSING)}",
                f"`{f['peak_token']}`" if f.get("peak_token") else MISSING,
            ]
        )
    headers = [
        "rank",
        "latent",
        "mean diff",
        "AUROC",
        "pattern",
        "rate harmful",
        "rate harmless",
        "active harmful / harmless",
        "peak token",
    ]
    return Block(table(headers, rows))
