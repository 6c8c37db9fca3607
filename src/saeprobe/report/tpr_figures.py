"""TPR at 1 % FPR, drawn by the report because the probe stage writes it only as numbers.

Two figures, one per threshold: the split's own 1 %-FPR threshold (`tpr_at_1pct_fpr`: the best
a monitor could do had it seen the split's negatives) and the threshold set on validation
(`tpr_at_1pct_fpr_val_threshold`: what a deployed monitor would do). The gap between them is
the cost of not knowing the OOD distribution in advance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from saeprobe.figures import new_figure, save_figure

FIGURES = {
    "tpr_at_1pct_fpr": ("tpr_own_threshold.png", "threshold at 1 % FPR on each split itself"),
    "tpr_at_1pct_fpr_val_threshold": (
        "tpr_val_threshold.png",
        "threshold at 1 % FPR on validation, applied to every split",
    ),
}
SPLIT_COLOURS = {"val": "#4c72b0", "ood": "#dd8452"}


def plot_tpr(
    records: Mapping[str, Mapping[str, Mapping[str, Any]]],
    key: str,
    path: Path,
    title: str,
) -> Path:
    """Horizontal bars: one row per probe label, one bar per split. `records` maps label ->
    split -> result record. With the validation threshold, the OOD false-positive rate it
    lets through is marked too: a high TPR bought with a high FPR is no win."""
    labels = list(records)
    splits = [s for s in SPLIT_COLOURS if any(s in records[lab] for lab in labels)]
    height = 0.8 / max(1, len(splits))
    fig = new_figure((8.5, 1.3 + 0.26 * len(labels)))
    ax = fig.add_subplot()
    y = np.arange(len(labels))
    for i, split in enumerate(splits):
        values = [records[lab].get(split, {}).get(key) for lab in labels]
        bars = [np.nan if v is None else float(v) for v in values]
        offset = (i - (len(splits) - 1) / 2) * height
        name = "OOD" if split == "ood" else split
        ax.barh(y + offset, bars, height=height * 0.95, color=SPLIT_COLOURS[split],
                label=f"TPR, {name}")  # fmt: skip
    if key == "tpr_at_1pct_fpr_val_threshold" and "ood" in splits:
        fpr = [records[lab].get("ood", {}).get("fpr_at_val_threshold") for lab in labels]
        ax.scatter([np.nan if v is None else float(v) for v in fpr], y, marker="x",
                   color="black", zorder=3, label="FPR, OOD, at the validation threshold")  # fmt: skip
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()  # first probe on top, as in the tables
    ax.set_xlim(0, 1)
    ax.set_xlabel("rate at the 1 % FPR threshold")
    ax.set_ylabel("probe")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return save_figure(fig, path, "png")


def write_tpr_figures(
    records: Mapping[str, Mapping[str, Mapping[str, Any]]], out_dir: Path, context: str
) -> list[tuple[Path, str]]:
    """Both figures into `out_dir`; (path, caption) per figure."""
    written = []
    for key, (name, how) in FIGURES.items():
        title = f"TPR at 1 % FPR ({how})\n{context}"
        written.append((plot_tpr(records, key, out_dir / name, title), f"TPR at 1 % FPR, {how}"))
    return written


def select_records(
    by_label: Mapping[str, Mapping[str, Mapping[str, Any]]], labels: Sequence[str]
) -> dict[str, Mapping[str, Mapping[str, Any]]]:
    return {lab: by_label[lab] for lab in labels if lab in by_label}
