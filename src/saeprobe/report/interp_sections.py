"""Report sections about the latents: autointerp scores, dataset-debugging findings, and links
to the latent dashboards (separate HTML files next to the report, linked relatively so the study
directory can move as a whole)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from saeprobe.report import html as h
from saeprobe.report.study_files import Study

METHOD_ORDER = ("simulation", "detection", "fuzzing")


def autointerp_methods(autointerp: dict[str, Any]) -> list[str]:
    found = {m for row in autointerp.get("rows", []) for m in row if isinstance(row[m], dict)
             and "uniform_mean" in row[m]}  # fmt: skip
    return [m for m in METHOD_ORDER if m in found] + sorted(found - set(METHOD_ORDER))


def _score(row: dict[str, Any], method: str, kind: str) -> str:
    s = row.get(method) or {}
    return h.interval(s.get(kind), s.get(f"{kind}_ci_low"), s.get(f"{kind}_ci_high"))


def autointerp_rows(autointerp: dict[str, Any]) -> list[dict[str, Any]]:
    """Per SAE and method: the uniform and frequency-weighted mean scores with intervals."""
    rows = []
    for row in autointerp.get("rows", []):
        for method in autointerp_methods(autointerp):
            s = row.get(method) or {}
            rows.append(
                {"sae": row.get("name"), "series": row.get("series"), "l0": row.get("l0"),
                 "method": method, "n": s.get("n")}
                | {k: s.get(k) for k in ("uniform_mean", "uniform_mean_ci_low",
                   "uniform_mean_ci_high", "frequency_weighted_mean",
                   "frequency_weighted_mean_ci_low", "frequency_weighted_mean_ci_high")}
            )  # fmt: skip
    return rows


def autointerp_section(study: Study) -> str:
    data = study.autointerp
    if data is None:
        return h.missing(_absent(study, "interp", "autointerp"))
    methods = autointerp_methods(data)
    headers = ["SAE", "architecture", "L0"]
    for m in methods:
        headers += [f"{m} (uniform)", f"{m} (frequency-weighted)"]
    body = [
        [r.get("name"), r.get("series"), r.get("l0"),
         *[_score(r, m, kind) for m in methods
           for kind in ("uniform_mean", "frequency_weighted_mean")]]
        for r in data.get("rows", [])
    ]  # fmt: skip
    parts = [
        h.paragraph(
            f"Explainer {data.get('explainer')}, scorer {data.get('scorer')}. Each SAE's mean "
            "score over sampled live latents, uniform (every latent counts once) and weighted by "
            "firing frequency (as a reader of activations meets them), with bootstrap 95 % "
            "intervals."
        ),
        h.table(headers, body),
    ]
    for m in methods:
        parts.append(f"<h3>{h.esc(m)}</h3>")
        parts.append(h.figure(study.autointerp_dir / f"score_vs_l0_{m}.png",
                              f"{m} score against L0, uniform and frequency-weighted"))  # fmt: skip
        parts.append(h.figure(study.autointerp_dir / f"score_vs_frequency_{m}.png",
                              f"{m} score against firing-frequency quantile"))  # fmt: skip
    return "".join(parts)


def _absent(study: Study, key: str, what: str) -> str:
    """Why a stage's section is empty: turned off in the config, or not run (yet)."""
    if key in study.config and study.config[key] is None:
        return f"the study config turns {what} off ({key}: null), so this is left out"
    return f"{what} has not run, so this is left out"


def _example(finding: dict[str, Any], limit: int = 90) -> str:
    examples = finding.get("examples") or []
    if not examples:
        return ""
    text = str(examples[0].get("text", "")).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def debug_section(study: Study) -> str:
    findings = study.debug_findings
    if findings is None:
        return h.missing(_absent(study, "debug", "dataset debugging"))
    summary = study.debug_summary or {}
    sae = summary.get("sae") or {}
    parts = [
        h.paragraph(
            "Latents that separate harmful from harmless prompts on the training split most "
            "strongly, and the surface pattern (punctuation, length, casing, ...) each one "
            "tracks, if any: a latent that fires on a pattern far more often in one class "
            "points to a shortcut in the dataset rather than to harmful intent."
        ),
        h.key_values([
            ("SAE", sae.get("name")), ("split", summary.get("split")),
            ("prompts", summary.get("rows")), ("harmful", summary.get("positive")),
            ("harmless", summary.get("negative")),
            ("near-duplicate latents collapsed", summary.get("collapsed")),
        ]),
    ]  # fmt: skip
    rates = summary.get("pattern_rates") or {}
    if rates:
        parts.append("<h3>Pattern rates per class</h3>")
        parts.append(h.table(["pattern", "harmful", "harmless"],
                             [[k, v.get("rate_pos"), v.get("rate_neg")] for k, v in rates.items()]))  # fmt: skip
    parts.append("<h3>Findings</h3>")
    if findings:
        rows = [
            [f.get("rank"), f.get("latent"), f.get("pattern") or "", f.get("peak_token"),
             f.get("mean_diff"), f.get("auroc"), f.get("rate_pos"), f.get("rate_neg"),
             _example(f)]
            for f in findings
        ]  # fmt: skip
        parts.append(h.table(["rank", "latent", "pattern", "peak token", "mean diff", "AUROC",
                              "pattern rate harmful", "pattern rate harmless", "top example"],
                             rows))  # fmt: skip
    else:
        parts.append(h.missing("no latent separated the classes"))
    page = study.debug_dir / "findings.html"
    if page.is_file():
        parts.append(h.paragraph_html(
            "Examples with per-token activations: " + h.link(relative(page, study.dir),
                                                              "dataset-debugging findings")))  # fmt: skip
    return "".join(parts)


def relative(path: Path, base: Path) -> str:
    """A link from the report (in `base`) to `path`, with forward slashes."""
    return Path(os.path.relpath(path, base)).as_posix()


def dashboard_links(study: Study) -> list[dict[str, str]]:
    """Every dashboard the stages wrote: per autointerp run, and the debugging findings."""
    links = []
    for page in sorted(study.autointerp_dir.glob("*/dashboard.html")):
        links.append(
            {"name": page.parent.name, "kind": "autointerp", "href": relative(page, study.dir)}
        )
    for page in sorted((study.dir / "latents").glob("*/dashboard.html")):
        links.append(
            {"name": page.parent.name, "kind": "latents", "href": relative(page, study.dir)}
        )
    page = study.debug_dir / "findings.html"
    if page.is_file():
        links.append(
            {"name": "dataset debugging", "kind": "debug", "href": relative(page, study.dir)}
        )
    return links  # fmt: skip


def dashboards_section(study: Study, links: list[dict[str, str]]) -> str:
    if not links:
        return h.missing("no latent dashboards: the autointerp and debug stages have not run, "
                         "so this is left out")  # fmt: skip
    items = "".join(
        f'<li>{h.link(link["href"], link["name"])} <span class="muted">({h.esc(link["kind"])})'
        "</span></li>"
        for link in links
    )
    return (
        h.paragraph(
            "Per-latent dashboards (top activating examples, explanations and scores), "
            "as separate files beside this report; keep the study directory together "
            "for the links to work."
        )  # fmt: skip
        + f'<ul class="dashboards">{items}</ul>'
    )
