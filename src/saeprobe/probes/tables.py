"""The summary table of a probe run (`summary.md`): the probes worth comparing, side by side.

Rows: the dense probe (logistic regression on the pooled residual), the difference of means,
every per-token probe on the residual, and per SAE its best k-sparse probe (by validation
AUROC) and every per-token probe on its latents. Columns: AUROC with 95 % bootstrap intervals
on train / val / OOD, OOD TPR at 1 % FPR with the OOD split's own threshold and with the
threshold fixed on validation (and the OOD FPR that threshold really gives), and the paired
OOD difference to the dense probe. Then the headline (dense against the best SAE probe of each
SAE), and how the dense probe's C criterion moves its AUROC. The first suite seed is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saeprobe.probes.comparisons import probe_label
from saeprobe.probes.per_token.heads import PER_TOKEN_PROBES
from saeprobe.probes.suite import ProbeResults

__all__ = ["summary_markdown"]


def _auc(r: Mapping[str, Any] | None, interval: bool = True) -> str:
    if r is None:
        return "–"
    if not interval:
        return f"{r['auroc']:.3f}"
    return f"{r['auroc']:.3f} [{r['auroc_ci_low']:.3f}, {r['auroc_ci_high']:.3f}]"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _delta(c: Mapping[str, Any] | None) -> str:
    if c is None:
        return "–"
    return f"{c['delta']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"


def _spread(r: Mapping[str, Any] | None) -> str:
    if r is None:
        return "–"
    parts = []
    if r.get("n_train_seeds"):
        parts.append(
            f"init {r['train_seed_auroc_min']:.3f}–{r['train_seed_auroc_max']:.3f}"
            f" ({r['n_train_seeds']})"
        )
    if r.get("n_sae_seeds"):
        parts.append(
            f"SAE {r['sae_seed_auroc_min']:.3f}–{r['sae_seed_auroc_max']:.3f} ({r['n_sae_seeds']})"
        )
    return "; ".join(parts) or "–"


def summary_markdown(results: ProbeResults) -> str:
    if not results.results:
        return "No probe results."
    seed = results.results[0]["seed"]
    by_label: dict[tuple[str, str], Mapping[str, Any]] = {
        (probe_label(r), r["split"]): r for r in results.results if r["seed"] == seed
    }
    deltas = {
        (c["probe_a"], c["split"], c["kind"]): c
        for c in results.comparisons
        if c["seed"] == seed and c["probe_b"] == "dense"
    }
    labels = list(dict.fromkeys(label for label, _ in by_label))
    saes = list(dict.fromkeys(r["sae"] for r in results.results if r.get("sae") is not None))
    rows: list[str] = ["dense", "diff_of_means"]
    rows += [lab for lab in labels if lab in PER_TOKEN_PROBES]
    for sae in saes:
        best_k = [
            c["probe_a"]
            for c in results.comparisons
            if c["seed"] == seed
            and c["kind"] == "vs_dense"
            and c["sae"] == sae
            and c["probe_a"].startswith("k_sparse/")
        ]
        rows += best_k[:1]
        rows += [
            lab
            for lab in labels
            if lab.split("/")[0] in PER_TOKEN_PROBES and lab.split("/")[1:2] == [sae]
        ]
    lines = [
        "| probe | train | val | OOD | OOD TPR@1% (OOD thr.) | OOD TPR@1% (val thr.) "
        "| OOD FPR at val thr. | Δ OOD vs dense | OOD seed spread |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label in rows:
        if (label, "train") not in by_label and (label, "ood") not in by_label:
            continue
        ood = by_label.get((label, "ood"))
        lines.append(
            f"| {label} | {_auc(by_label.get((label, 'train')), False)} "
            f"| {_auc(by_label.get((label, 'val')))} | {_auc(ood)} "
            f"| {_rate(ood and ood['tpr_at_1pct_fpr'])} "
            f"| {_rate(ood and ood.get('tpr_at_1pct_fpr_val_threshold'))} "
            f"| {_rate(ood and ood.get('fpr_at_val_threshold'))} "
            f"| {_delta(deltas.get((label, 'ood', 'vs_dense')))} | {_spread(ood)} |"
        )
    lines += ["", "Δ = AUROC(probe) − AUROC(dense), paired bootstrap 95 % interval."]
    headline = [
        c for c in results.comparisons if c["seed"] == seed and c["kind"] == "best_sae_vs_dense"
    ]
    if headline:
        lines += [
            "",
            "Headline: the best SAE probe of each SAE (chosen on validation) against the dense probe.",
            "",
            "| SAE | best SAE probe | val | OOD | Δ val | Δ OOD |",
            "|---|---|---|---|---|---|",
        ]
        for sae in saes:
            by_split = {c["split"]: c for c in headline if c["sae"] == sae}
            if not by_split:
                continue
            label = next(iter(by_split.values()))["probe_a"]
            lines.append(
                f"| {sae} | {label} | {_auc(by_label.get((label, 'val')))} "
                f"| {_auc(by_label.get((label, 'ood')))} | {_delta(by_split.get('val'))} "
                f"| {_delta(by_split.get('ood'))} |"
            )
    choice = [c for c in results.dense_c_choice if c["seed"] == seed]
    if choice:
        lines += [
            "",
            "Dense probe C by criterion (grouped CV on train; AUROC of the refit at that C):",
            "",
            "| criterion | C | train | val | OOD | used |",
            "|---|---|---|---|---|---|",
        ]
        for c in choice:
            lines.append(
                f"| {c['criterion']} | {c['c']:g} | {_rate(c.get('auroc_train'))} "
                f"| {_rate(c.get('auroc_val'))} | {_rate(c.get('auroc_ood'))} "
                f"| {'yes' if c['chosen'] else ''} |"
            )
    return "\n".join(lines)
