"""Report sections about probing: AUROC against k, the per-token probes, the OOD breakdown, the
reconstruction delta, the paired comparisons, and TPR at 1 % FPR.

All tables read the first pooling's results at its first suite seed (the headline's); the
AUROC-against-k figures and the headline comparison are shown for every pooling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from saeprobe.probes.comparisons import probe_label
from saeprobe.probes.per_token.heads import PER_TOKEN_PROBES
from saeprobe.report import html as h
from saeprobe.report.headline import first_seed, headline_rows
from saeprobe.report.study_files import Study
from saeprobe.report.tpr_figures import write_tpr_figures

NOT_RUN = "the probe stage has not run, so this is left out"
REFERENCES = ("dense", "diff_of_means")
BREAKDOWN_REFERENCE = {
    "group": "its own rows",
    "split_negatives": "+ all OOD negatives",
    "split_positives": "+ all OOD positives",
}


def by_label(
    records: Sequence[Mapping[str, Any]], seed: int | None
) -> dict[str, dict[str, Mapping[str, Any]]]:
    """label -> split -> record, at one seed, in the order the records come."""
    table: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in records:
        if seed is not None and r.get("seed") != seed:
            continue
        table.setdefault(probe_label(r), {})[str(r["split"])] = r
    return table


def _auroc(record: Mapping[str, Any] | None) -> str:
    if not record:
        return ""
    return h.interval(record.get("auroc"), record.get("auroc_ci_low"), record.get("auroc_ci_high"))


def _spread(record: Mapping[str, Any] | None) -> str:
    """The spread over training seeds of a per-token probe (its bootstrap covers prompts only)."""
    if not record or record.get("n_train_seeds") is None:
        return ""
    return (
        f"{h.fmt(record.get('train_seed_auroc_min'))}–"
        f"{h.fmt(record.get('train_seed_auroc_max'))} ({record['n_train_seeds']})"
    )


def auroc_vs_k_section(study: Study) -> str:
    if not study.probes:
        return h.missing(NOT_RUN)
    parts = [
        h.paragraph(
            "AUROC of k-sparse probes on SAE latents against k, one panel per split (train, "
            "validation, OOD); the dense probe and the per-token probes on the residual are "
            "horizontal reference lines, shaded bands are bootstrap 95 % intervals."
        )
    ]
    for run in study.probes:
        parts.append(
            h.figure(run.dir / "auroc_vs_k.png", f"AUROC against k, {run.pooling} pooling")
        )
    return "".join(parts)


def per_token_section(study: Study) -> str:
    if study.probe is None:
        return h.missing(NOT_RUN)
    results = study.probe
    labels = by_label(results["results"], first_seed(results))
    chosen = [
        lab for lab, splits in labels.items()
        if lab in REFERENCES or next(iter(splits.values()))["probe"] in PER_TOKEN_PROBES
    ]  # fmt: skip
    if not [lab for lab in chosen if lab not in REFERENCES]:
        return h.missing("this study fitted no per-token probes (probe.per_token is off)")
    rows = []
    for lab in chosen:
        s = labels[lab]
        first = next(iter(s.values()))
        ood = s.get("ood") or {}
        rows.append(
            [
                lab, first.get("sae") or "residual", h.fmt((s.get("train") or {}).get("auroc")),
                _auroc(s.get("val")), _auroc(s.get("ood")), ood.get("tpr_at_1pct_fpr"),
                ood.get("tpr_at_1pct_fpr_val_threshold"), ood.get("fpr_at_val_threshold"),
                _spread(ood),
            ]
        )  # fmt: skip
    headers = ["probe", "on", "train AUROC", "val AUROC", "OOD AUROC", "OOD TPR@1% (own thr.)",
               "OOD TPR@1% (val thr.)", "OOD FPR at val thr.", "OOD AUROC over init seeds"]  # fmt: skip
    return h.paragraph(
        "Probes that read every token and aggregate (max of logits, softmax, attention, "
        "multimax, EMA, rolling mean), on the residual and on SAE latents, with the pooled "
        "dense and difference-of-means probes for reference. Intervals are bootstrap 95 % "
        "over prompts; the last column is the spread over training seeds."
    ) + h.table(headers, rows)


def ood_breakdown_section(study: Study) -> str:
    if study.probe is None:
        return h.missing(NOT_RUN)
    results = study.probe
    seed = first_seed(results)
    breakdown = [r for r in results.get("ood_breakdown", []) if seed is None or r["seed"] == seed]
    if not breakdown:
        return h.missing("the probe stage wrote no OOD breakdown (the OOD split has no groups)")
    best = {r["best_probe"]: r["sae"] for r in headline_rows(results)}
    probes = ["dense", *best]
    cells: dict[tuple[str, str, str], dict[str, float]] = {}
    sizes: dict[tuple[str, str, str], tuple[int, int]] = {}
    for r in breakdown:
        lab = probe_label(r)
        if lab not in probes:
            continue
        key = (r["group_type"], r["group"], r.get("reference", ""))
        cells.setdefault(key, {})[lab] = r["auroc"]
        sizes[key] = (r.get("n"), r.get("n_pos"))
    # Columns are named by SAE: the best probe's full label is in the headline table.
    headers = ["by", "group", "scored on", "n", "n pos", "dense", *best.values()]
    rows = [
        [kind, group, BREAKDOWN_REFERENCE.get(ref, ref), *sizes[key],
         *[values.get(p) for p in probes]]
        for key, values in cells.items()
        for kind, group, ref in [key]
    ]  # fmt: skip
    return h.paragraph(
        "OOD AUROC per source and per transformation, for the dense probe and each SAE's "
        "best probe (chosen on validation; columns named by SAE). A group holding one class "
        "only is scored together with all OOD prompts of the other class. The probe stage records no interval per group; "
        "ood_breakdown.csv has every probe."
    ) + h.table(headers, rows)


def reconstruction_section(study: Study) -> str:
    if study.probe is None:
        return h.missing(NOT_RUN)
    results = study.probe
    seed = first_seed(results)
    records = [
        r for r in results.get("reconstruction_delta", []) if seed is None or r["seed"] == seed
    ]
    if not records:
        return h.missing("the probe stage wrote no reconstruction delta (no SAEs were probed)")
    rows = [
        [r["sae"], r["split"], r.get("dense_auroc"), r.get("reconstruction_auroc"),
         h.interval(r.get("delta"), r.get("delta_ci_low"), r.get("delta_ci_high"))]
        for r in records
    ]  # fmt: skip
    return (
        h.paragraph(
            "The dense probe on the activations against the dense probe on each SAE's "
            "reconstruction: how much probing signal the SAE's error term carries. Δ = dense − "
            "reconstruction, with its paired bootstrap 95 % interval."
        )
        + h.table(["SAE", "split", "dense AUROC", "reconstruction AUROC", "Δ"], rows)
        + h.figure(study.probe_dir / "reconstruction_delta.png", "Reconstruction delta per SAE and split")
    )  # fmt: skip


def comparisons_section(study: Study) -> str:
    if study.probe is None:
        return h.missing(NOT_RUN)
    results = study.probe
    seed = first_seed(results)
    ood = [
        c for c in results.get("comparisons", [])
        if c.get("split") == "ood" and (seed is None or c.get("seed") == seed)
    ]  # fmt: skip
    parts = [
        h.paragraph(
            "Paired bootstrap comparisons on the OOD split: Δ = AUROC(a) − AUROC(b), negative "
            "when b (the reference) wins; the interval is paired because both probes are scored "
            "on the same resampled prompts. comparisons.csv has train and validation too."
        )
    ]
    if len(study.probes) > 1:
        parts.append("<h3>Each SAE's best probe against the dense probe, per pooling (OOD)</h3>")
        per_pooling = {
            run.pooling: {r["sae"]: r for r in headline_rows(run.results)} for run in study.probes
        }
        saes = list(dict.fromkeys(s for rows in per_pooling.values() for s in rows))
        body = [[sae, *[_delta(per_pooling[p].get(sae)) for p in per_pooling]] for sae in saes]
        parts.append(h.table(["SAE", *[f"Δ {p}" for p in per_pooling]], body))
    if ood:
        parts.append("<h3>Every comparison (OOD)</h3>")
        rows = [
            [c["kind"], c["probe_a"], c["probe_b"], c.get("auroc_a"), c.get("auroc_b"),
             h.interval(c.get("delta"), c.get("ci_low"), c.get("ci_high")), c.get("chosen_by")]
            for c in ood
        ]  # fmt: skip
        parts.append(
            h.table(["kind", "probe a", "probe b", "AUROC a", "AUROC b", "Δ", "chosen by"], rows)
        )
    else:
        parts.append(h.missing("no OOD comparisons were written"))
    return "".join(parts)  # fmt: skip


def _delta(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return ""
    return h.interval(row["delta"], row["delta_ci_low"], row["delta_ci_high"])


def tpr_section(study: Study, figures_dir: Path) -> str:
    if study.probe is None:
        return h.missing(NOT_RUN)
    results = study.probe
    labels = by_label(results["results"], first_seed(results))
    chosen = [lab for lab in ("dense", "diff_of_means") if lab in labels]
    chosen += [lab for lab, s in labels.items()
               if next(iter(s.values()))["probe"] in PER_TOKEN_PROBES
               and next(iter(s.values())).get("sae") is None]  # fmt: skip
    chosen += [r["best_probe"] for r in headline_rows(results) if r["best_probe"] in labels]
    records = {lab: labels[lab] for lab in dict.fromkeys(chosen)}
    config = results["config"]
    context = f"{config.get('model', '')} layer {config.get('layer', '')}, {config.get('pooling', '')} pooling"
    parts = [
        h.paragraph(
            "TPR at 1 % FPR of the dense, difference-of-means and per-token probes on the "
            "residual and of each SAE's best probe, on validation and OOD. With the threshold "
            "set on each split itself, and with the threshold set on validation (as a deployed "
            "monitor would): the gap is the price of not seeing the OOD negatives in advance."
        )
    ]  # fmt: skip
    own = [study.probe_dir / name for name in ("tpr_own_threshold.png", "tpr_val_threshold.png")]
    if all(p.is_file() for p in own):  # the probe stage drew them
        figures = list(
            zip(
                own,
                ("TPR at 1 % FPR, own threshold", "TPR at 1 % FPR, validation threshold"),
                strict=True,
            )
        )
    else:
        figures = write_tpr_figures(records, figures_dir, context)
    parts += [h.figure(path, caption) for path, caption in figures]
    return "".join(parts)  # fmt: skip
