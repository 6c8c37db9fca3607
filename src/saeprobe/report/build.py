"""`write_report(study_dir)`: the study's report.html and results.json.

Both are derived only from the stages' outputs in the study directory, so the report can be
rebuilt at any time (`saeprobe run ... --from report`) and always matches the files beside it.
Neither holds a timestamp: a resumed run that reuses every stage writes identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saeprobe.io_utils import atomic_write_json, atomic_write_text
from saeprobe.report import html as h
from saeprobe.report import probe_sections as probe
from saeprobe.report.headline import (
    STUDY_FINDING,
    TABLE_HEADERS,
    agreement,
    headline_rows,
    headline_sentence,
    table_cells,
)
from saeprobe.report.interp_sections import (
    autointerp_rows,
    autointerp_section,
    dashboard_links,
    dashboards_section,
    debug_section,
    relative,
)
from saeprobe.report.setup_section import setup_section, setup_summary
from saeprobe.report.study_files import Study, load_study
from saeprobe.report.sweep_sections import (
    chat_variant_rows,
    chat_variants_section,
    frontier_section,
    sae_section,
    sae_table_rows,
)

# Section ids, in page order; tests and the browser check read this list.
SECTIONS = {
    "setup": "Setup",
    "headline": "Headline",
    "sae-table": "SAEs",
    "frontier": "Sparsity–fidelity frontier and firing frequencies",
    "chat-variants": "Chat-SAE variants",
    "auroc-vs-k": "Probing: AUROC against k",
    "per-token-probes": "Probing: per-token probes",
    "ood-breakdown": "Probing: OOD breakdown by source and transformation",
    "reconstruction-delta": "Probing: reconstruction delta",
    "comparisons": "Probing: paired comparisons",
    "tpr": "Probing: TPR at 1 % FPR",
    "autointerp": "Autointerp against L0 and firing frequency",
    "debugging": "Dataset debugging",
    "dashboards": "Latent dashboards",
}
FIGURES_DIR = "report_figures"  # figures the report draws itself (the stages draw the rest)


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    results: Path


def _headline_section(rows: list[dict[str, Any]], sentence: str, pooling: str | None) -> str:
    verdict = agreement(rows)
    box = (
        '<div class="headline">'
        f"<p><strong>This run:</strong> {h.esc(sentence)}</p>"
        f"<p><strong>The study:</strong> {h.esc(STUDY_FINDING)}</p>"
        + (f"<p><strong>So this run</strong> {h.esc(verdict)}.</p>" if rows else "")
        + "</div>"
    )
    if not rows:
        return box + h.missing("the probe stage has not run, so the headline table is left out")
    note = h.paragraph(
        f"Per SAE, its best SAE probe (chosen on validation AUROC, never OOD) against the dense "
        f"probe on the OOD split, {pooling} pooling. AUROCs carry bootstrap 95 % intervals over "
        "base prompts; Δ = SAE − dense with its paired interval (negative: the dense probe "
        "wins). A win needs the paired interval to exclude zero.",
        cls="muted",
    )
    return box + note + h.table(list(TABLE_HEADERS), [table_cells(r) for r in rows])


def _outputs(study: Study) -> dict[str, str | None]:
    """Where each stage's outputs are, relative to the study directory (None: absent)."""
    parts = {
        "sweep": study.sweep_dir / "sweep.json",
        "dataset": study.dataset_dir / "summary.json",
        "probe": study.probe_dir / "results.json",
        "autointerp": study.autointerp_dir / "autointerp_sweep.json",
        "debug": study.debug_dir / "findings.json",
    }
    found = {k: relative(p, study.dir) if p.is_file() else None for k, p in parts.items()}
    for run in study.probes[1:]:
        found[f"probe:{run.pooling}"] = relative(run.dir / "results.json", study.dir)
    return found


def build(study: Study) -> tuple[str, dict[str, Any]]:
    """The page and the results.json object for a loaded study."""
    figures_dir = study.dir / FIGURES_DIR
    setup = setup_summary(study)
    pooling = study.probes[0].pooling if study.probes else None
    rows = headline_rows(study.probe, study.sweep_rows) if study.probe else []
    sentence = headline_sentence(rows)
    links = dashboard_links(study)
    bodies = {
        "setup": setup_section(study, setup),
        "headline": _headline_section(rows, sentence, pooling),
        "sae-table": sae_section(study.sweep_rows),
        "frontier": frontier_section(study.sweep_dir, bool(study.sweep_rows)),
        "chat-variants": chat_variants_section(study.sweep_rows),
        "auroc-vs-k": probe.auroc_vs_k_section(study),
        "per-token-probes": probe.per_token_section(study),
        "ood-breakdown": probe.ood_breakdown_section(study),
        "reconstruction-delta": probe.reconstruction_section(study),
        "comparisons": probe.comparisons_section(study),
        "tpr": probe.tpr_section(study, figures_dir),
        "autointerp": autointerp_section(study),
        "debugging": debug_section(study),
        "dashboards": dashboards_section(study, links),
    }
    sections = {k: (title, h.section(k, title, bodies[k])) for k, title in SECTIONS.items()}
    title = str(study.config.get("title") or "saeprobe study")
    subtitle = f"{setup['model']}, layer {setup['layer']}. {sentence}"
    page = h.page(title, subtitle, sections)
    results = {
        "title": title,
        "setup": setup,
        "headline": {
            "split": "ood",
            "pooling": pooling,
            "rows": rows,
            "sentence": sentence,
            "study_finding": STUDY_FINDING,
            "agreement": agreement(rows),
        },
        "sae_table": sae_table_rows(study.sweep_rows),
        "chat_variants": chat_variant_rows(study.sweep_rows),
        "headline_by_pooling": {
            run.pooling: headline_rows(run.results, study.sweep_rows) for run in study.probes
        },
        "autointerp": autointerp_rows(study.autointerp) if study.autointerp else [],
        "debug_findings": [
            {k: f.get(k) for k in ("rank", "latent", "pattern", "mean_diff", "auroc")}
            for f in study.debug_findings or []
        ],
        "dashboards": links,
        "sections": list(SECTIONS),
        "outputs": _outputs(study),
    }
    return page, results


def write_report(study_dir: str | Path) -> ReportFiles:
    """Write `study_dir/report.html` and `study_dir/results.json` (atomically) and return
    their paths. Stages that have not run are left out, and their sections say so."""
    study = load_study(study_dir)
    page, results = build(study)
    files = ReportFiles(html=study.dir / "report.html", results=study.dir / "results.json")
    atomic_write_json(files.results, results)
    atomic_write_text(files.html, page)
    return files
