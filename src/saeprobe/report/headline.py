"""The headline: per SAE, its best probe against the dense probe out of distribution.

The probe stage already picks each SAE's best probe on validation and compares it with the
dense probe by a paired bootstrap (`kind == "best_sae_vs_dense"`). The headline reads those
comparisons on the OOD split and says in plain words what they show, whichever way they fall:
a paired interval that excludes zero is a win for one side, one that straddles zero is a tie.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from saeprobe.probes.comparisons import probe_label
from saeprobe.report.html import interval

HEADLINE_SPLIT = "ood"

# The study this library reproduces, in our words; the report shows it beside ours.
STUDY_FINDING = (
    "The study found that probes on SAE latents generalise worse than a plain linear probe on "
    "the model's activations: out of distribution, the dense probe detected harmful intent "
    "better than the SAE probes did."
)


def first_seed(probe_results: Mapping[str, Any]) -> int | None:
    """The first suite seed: the one every headline number is read at."""
    seeds = probe_results.get("config", {}).get("seeds") or []
    return int(seeds[0]) if seeds else None


def _record(records: Sequence[Mapping[str, Any]], label: str, split: str, seed: int | None):
    for r in records:
        if probe_label(r) == label and r.get("split") == split:
            if seed is None or r.get("seed") == seed:
                return r
    return None


def headline_rows(
    probe_results: Mapping[str, Any],
    sweep_rows: Sequence[Mapping[str, Any]] | None = None,
    split: str = HEADLINE_SPLIT,
) -> list[dict[str, Any]]:
    """One row per SAE: the dense probe's AUROC, the SAE's best probe and its AUROC (each with
    its bootstrap interval) and the paired difference SAE − dense with its interval.

    `sweep_rows` (the sweep's table) supply each SAE's architecture; without them it is None.
    """
    seed = first_seed(probe_results)
    records = probe_results.get("results", [])
    series = {r.get("name"): r.get("series") or r.get("architecture") for r in sweep_rows or []}
    rows = []
    for c in probe_results.get("comparisons", []):
        if c.get("kind") != "best_sae_vs_dense" or c.get("split") != split:
            continue
        if seed is not None and c.get("seed") != seed:
            continue
        dense = _record(records, str(c["probe_b"]), split, seed) or {}
        best = _record(records, str(c["probe_a"]), split, seed) or {}
        rows.append(
            {
                "sae": c["sae"],
                "architecture": series.get(c["sae"]),
                "split": split,
                "seed": c.get("seed"),
                "dense_probe": c["probe_b"],
                "dense_auroc": c["auroc_b"],
                "dense_ci_low": dense.get("auroc_ci_low"),
                "dense_ci_high": dense.get("auroc_ci_high"),
                "best_probe": c["probe_a"],
                "chosen_by": c.get("chosen_by"),
                "sae_auroc": c["auroc_a"],
                "sae_ci_low": best.get("auroc_ci_low"),
                "sae_ci_high": best.get("auroc_ci_high"),
                "delta": c["delta"],
                "delta_ci_low": c["ci_low"],
                "delta_ci_high": c["ci_high"],
                "winner": _winner(c["ci_low"], c["ci_high"]),
            }
        )
    return rows


def _winner(low: float, high: float) -> str:
    """Who the paired interval of SAE − dense favours: 'dense', 'sae', or 'tie'."""
    if high < 0:
        return "dense"
    if low > 0:
        return "sae"
    return "tie"


TABLE_HEADERS = ("SAE", "architecture", "dense OOD AUROC", "best SAE probe", "SAE OOD AUROC",
                 "Δ (SAE − dense)")  # fmt: skip


def table_cells(row: Mapping[str, Any]) -> list[str]:
    return [
        str(row["sae"]),
        str(row.get("architecture") or ""),
        interval(row["dense_auroc"], row.get("dense_ci_low"), row.get("dense_ci_high")),
        str(row["best_probe"]),
        interval(row["sae_auroc"], row.get("sae_ci_low"), row.get("sae_ci_high")),
        interval(row["delta"], row["delta_ci_low"], row["delta_ci_high"], signed=True),
    ]


def headline_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table with aligned columns, for the terminal."""
    if not rows:
        return "no headline: the probe stage compared no SAE with the dense probe"
    cells = [list(TABLE_HEADERS), *[table_cells(r) for r in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(TABLE_HEADERS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in cells]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _span(values: Sequence[float]) -> str:
    """'0.05–0.12' (magnitudes), with a third decimal when two would read as zero."""
    lo, hi = min(values), max(values)
    digits = 2 if lo >= 0.01 else 3
    a, b = f"{lo:.{digits}f}", f"{hi:.{digits}f}"
    return a if a == b else f"{a}–{b}"


def _count(n: int, of: int) -> str:
    return "the one SAE's" if of == 1 else ("every SAE's" if n == of else f"{n} of {of} SAEs'")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]  # str.capitalize would lower-case "SAE"


def headline_sentence(rows: Sequence[Mapping[str, Any]]) -> str:
    """What the numbers say, in words; a win needs the paired 95 % interval to exclude zero."""
    if not rows:
        return "No headline: the probe stage has not compared any SAE probe with the dense probe."
    n = len(rows)
    split = "OOD" if rows[0].get("split", HEADLINE_SPLIT) == "ood" else rows[0]["split"]
    dense = [-r["delta"] for r in rows if r["winner"] == "dense"]
    sae = [r["delta"] for r in rows if r["winner"] == "sae"]
    ties = [r["delta"] for r in rows if r["winner"] == "tie"]
    if len(dense) == n:
        return (
            f"The dense probe beats {_count(n, n)} best probe {split} by {_span(dense)} AUROC; "
            "every paired 95 % interval excludes zero."
        )
    if len(sae) == n:
        return (
            f"{_capital(_count(n, n))} best probe beats the dense probe {split} by "
            f"{_span(sae)} AUROC; every paired 95 % interval excludes zero."
        )
    if len(ties) == n:
        return (
            f"No SAE's best probe differs from the dense probe {split} beyond chance: the "
            f"paired differences run from {min(ties):+.3f} to {max(ties):+.3f} AUROC and "
            "every 95 % interval includes zero."
        )
    parts = []
    if dense:
        parts.append(f"the dense probe beats the best probes of {len(dense)} of the {n} SAEs by "
                     f"{_span(dense)} AUROC")  # fmt: skip
    if sae:
        parts.append(f"the best {_probes(len(sae))} beat{'s' if len(sae) == 1 else ''} it by "
                     f"{_span(sae)}")  # fmt: skip
    if ties:
        parts.append(f"{len(ties)} {'is' if len(ties) == 1 else 'are'} level with it (the "
                     "paired interval includes zero)")  # fmt: skip
    return f"{split}: " + "; ".join(parts) + "."


def _probes(n: int) -> str:
    return "probe of 1 SAE" if n == 1 else f"probes of {n} SAEs"


def agreement(rows: Sequence[Mapping[str, Any]]) -> str:
    """How this run's headline stands against the study's finding."""
    if not rows:
        return "not yet known: no headline rows"
    winners = [r["winner"] for r in rows]
    if all(w == "dense" for w in winners):
        return "agrees with the study"
    if all(w == "sae" for w in winners):
        return "contradicts the study"
    if winners.count("dense") > winners.count("sae"):
        return "mostly agrees with the study"
    return "does not reproduce the study's finding"
