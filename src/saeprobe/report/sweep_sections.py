"""Report sections about the SAEs themselves: the table, the frontier, the histograms, and the
chat-SAE variants."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from saeprobe.report import html as h

NOT_RUN = "the sweep has not run, so this is left out"

# (row key, column title); a column no row fills is dropped.
SAE_COLUMNS = (
    ("name", "run"),
    ("series", "architecture"),
    ("phase", "phase"),
    ("steps", "steps"),
    ("l0", "L0"),
    ("fvu", "FVU"),
    ("delta_lm_loss", "ΔLM loss"),
    ("kl_divergence", "KL"),
    ("ce_loss_recovered", "CE recovered"),
    ("dead_fraction", "dead"),
    ("n_high_frequency", "HF latents"),
    ("auxk", "AuxK"),
)
CHAT_COLUMNS = (
    ("name", "run"),
    ("phase", "phase"),
    ("init_from", "from"),
    ("reinit_fraction", "reinit"),
    ("steps", "steps"),
    ("eval_store", "eval on"),
    ("l0", "L0"),
    ("fvu", "FVU"),
    ("delta_lm_loss", "ΔLM loss"),
    ("kl_divergence", "KL"),
    ("dead_fraction", "dead"),
    ("n_high_frequency", "HF latents"),
)


def _auxk(row: Mapping[str, Any]) -> bool | None:
    """Sweeps before the `auxk` column wrote `uses_auxk` or nothing; unknown stays None."""
    value = row.get("auxk", row.get("uses_auxk"))
    return None if value is None else bool(value)


def sae_table_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (_auxk(r) if k == "auxk" else r.get(k)) for k, _ in SAE_COLUMNS} for r in rows]


def chat_variant_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Runs finetuned from another run, beside the runs they started from and the runs of
    their phases trained from scratch."""
    finetunes = [r for r in rows if r.get("init_from")]
    if not finetunes:
        return []
    involved = {r["name"] for r in finetunes}
    involved |= {str(r["init_from"]).split("@")[0] for r in finetunes}
    phases = {r.get("phase") for r in finetunes}
    chosen = [r for r in rows if r["name"] in involved or r.get("phase") in phases]
    # A phase of chat SAEs from scratch (no init_from) belongs to the comparison too.
    chosen += [r for r in rows if r not in chosen and "chat" in str(r.get("phase", ""))]
    return [{k: r.get(k) for k, _ in CHAT_COLUMNS} for r in chosen]


def _table(columns: Sequence[tuple[str, str]], rows: list[dict[str, Any]]) -> str:
    kept = [(k, t) for k, t in columns if any(r.get(k) is not None for r in rows)]
    return h.table([t for _, t in kept], [[r.get(k) for k, _ in kept] for r in rows])


def sae_section(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return h.missing(NOT_RUN)
    held = sorted({str(r.get("eval_store")) for r in rows})
    return h.paragraph(
        f"{len(rows)} SAEs, each evaluated on the held-out tail of store {', '.join(held)}. FVU "
        "is relative to the mean; ΔLM loss and KL (nats per token) splice the SAE into the "
        "model at the stored positions; dead is the fraction of latents that never fire on "
        "held-out tokens; HF latents fire on at least 10 % of them; AuxK says whether the "
        "dead-latent auxiliary loss was on (blank: not recorded by this sweep)."
    ) + _table(SAE_COLUMNS, sae_table_rows(rows))


def frontier_section(sweep_dir: Path, have_rows: bool) -> str:
    figures = sorted(sweep_dir.glob("pareto-*.png"))
    hist = sorted(sweep_dir.glob("frequencies-*.png"))
    if not figures and not hist:
        return h.missing(NOT_RUN if not have_rows else "the sweep wrote no figures")
    parts = [
        h.figure(p, f"Sparsity–fidelity frontier: reconstruction and LM loss against L0 "
                    f"({p.stem.removeprefix('pareto-')})")
        for p in figures
    ]  # fmt: skip
    parts += [
        h.figure(p, f"Latent firing frequencies ({p.stem.removeprefix('frequencies-')}); the "
                 "dashed line marks 10 %")
        for p in hist
    ]  # fmt: skip
    return "".join(parts)


def chat_variants_section(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return h.missing(NOT_RUN)
    variants = chat_variant_rows(rows)
    if not variants:
        return h.missing("this study trained no finetuned (chat) SAE variants")
    return h.paragraph(
        "SAEs finetuned on chat data from a pretraining SAE (optionally re-initialising a "
        "fraction of latents), against the SAE they started from and SAEs trained on chat data "
        "from scratch; RUN@N names run RUN's snapshot at step N. Every variant is "
        "evaluated on its phase's held-out store."
    ) + _table(CHAT_COLUMNS, [r | {"init_from": r["init_from"] or "scratch"} for r in variants])
