"""Figures and tables of the probe stage: AUROC against k, and the reconstruction-delta table.

Drawn on a private `matplotlib.figure.Figure` with an Agg canvas, never pyplot (global state,
not thread-safe, may open windows), and written through `atomic_write` so an interrupted run
never leaves a truncated image. The format follows the path's suffix (.png or .svg).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullLocator

from saeprobe.errors import DataError
from saeprobe.figures import new_figure, output_format, save_figure
from saeprobe.probes.data import SPLITS
from saeprobe.probes.suite import ProbeResults

__all__ = ["plot_auroc_vs_k", "plot_reconstruction_delta_table", "reconstruction_delta_markdown"]

_SPLIT_TITLES = {"train": "Train", "val": "Val (in-distribution)", "ood": "OOD"}
_TABLE_COLUMNS = {"train": "Train", "val": "Val", "ood": "OOD"}
# Colour = SAE; line style and marker = how the latents were chosen. Dashed is kept for the
# dense reference line so it cannot be mistaken for an SAE curve.
_SELECTION_STYLE: dict[str, tuple[Any, str]] = {
    "mean_diff": ("-", "o"),
    "mean_diff_normalized": ("-.", "s"),
    "l1": ((0, (3, 1, 1, 1, 1, 1)), "^"),
    "random": (":", "x"),
}
# Per-token probes on the residual: horizontal lines in one dark colour family each, loosely
# dashed, so they read as references next to the dense probe's black dashed line.
_PER_TOKEN_STYLE: dict[str, tuple[str, Any]] = {
    "max_of_logits": ("#8c2d04", (0, (6, 2))),
    "softmax": ("#6a51a3", (0, (6, 2))),
    "attention": ("#005a32", (0, (6, 2))),
    "multimax": ("#084594", (0, (6, 2))),
    "ema": ("#99000d", (0, (2, 2))),
    "rolling_mean": ("#525252", (0, (2, 2))),
}


def _records(results: ProbeResults | Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return list(results.results if isinstance(results, ProbeResults) else results)


def _mean_over_seeds(
    rows: Sequence[Mapping[str, Any]],
) -> tuple[list[float], list[float], list[float], list[float]]:
    """(ks, mean AUROC, mean CI low, mean CI high) per k, seeds averaged, sorted by k."""
    by_k: dict[float, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_k.setdefault(float(r["k"]), []).append(r)
    ks = sorted(by_k)
    mean = [float(np.mean([r["auroc"] for r in by_k[k]])) for k in ks]
    low = [float(np.mean([r["auroc_ci_low"] for r in by_k[k]])) for k in ks]
    high = [float(np.mean([r["auroc_ci_high"] for r in by_k[k]])) for k in ks]
    return ks, mean, low, high


def plot_auroc_vs_k(
    results: ProbeResults | Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    splits: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """AUROC against k, one panel per split (shared y), one line per (SAE, selection).

    Colour identifies the SAE; line style and marker identify the selection (mean_diff solid
    circles, mean_diff_normalized dash-dot squares, l1 dash-dot-dot triangles, the
    random-latent control dotted crosses). The 1-sparse probe is a star at k=1, the dense probe
    a black dashed line, the difference-of-means probe a grey dashed line, and each per-token
    probe on the residual (max_of_logits, softmax, attention, ...) a coloured horizontal line. Shaded bands are the
    bootstrap 95 % intervals (averaged over seeds when there are several). x is logarithmic
    with a tick at every k.
    """
    path = Path(path)
    fmt = output_format(path)
    rows = _records(results)
    present = {r["split"] for r in rows}
    splits = [s for s in (splits or SPLITS) if s in present]
    curves = [r for r in rows if r["probe"] in ("k_sparse", "random_latents")]
    if not splits or not curves:
        raise DataError(
            "no k_sparse or random_latents results to plot; run the suite with at least one "
            "SAE (and k) first"
        )
    saes = list(dict.fromkeys(r["sae"] for r in rows if r.get("sae") is not None))
    palette = colormaps["tab10" if len(saes) <= 10 else "tab20"].colors
    color = {sae: palette[i % len(palette)] for i, sae in enumerate(saes)}
    all_ks = sorted({int(r["k"]) for r in rows if r.get("k") is not None})

    fig = new_figure((4.6 * len(splits), 4.4))
    axes = fig.subplots(1, len(splits), sharey=True, squeeze=False)[0]
    handles: dict[str, Line2D] = {}
    for ax, split in zip(axes, splits, strict=True):
        in_split = [r for r in rows if r["split"] == split]
        for sae in saes:
            keyed = [r for r in in_split if r.get("sae") == sae]
            series = list(
                dict.fromkeys(
                    r["selection"] for r in keyed if r["probe"] in ("k_sparse", "random_latents")
                )
            )
            for selection in series:
                ks, mean, low, high = _mean_over_seeds(
                    [
                        r
                        for r in keyed
                        if r["selection"] == selection
                        and r["k"] is not None
                        and r["probe"] in ("k_sparse", "random_latents")
                    ]
                )
                style, marker = _SELECTION_STYLE.get(selection, ("-", "o"))
                label = f"{sae}: {selection}"
                (line,) = ax.plot(
                    ks,
                    mean,
                    linestyle=style,
                    marker=marker,
                    color=color[sae],
                    lw=1.6,
                    ms=5,
                    alpha=0.75 if selection == "random" else 1.0,
                    label=label,
                )
                ax.fill_between(ks, low, high, color=color[sae], alpha=0.10, linewidth=0)
                handles.setdefault(label, line)
            one = [r for r in keyed if r["probe"] == "one_sparse"]
            if one:
                (star,) = ax.plot(
                    [1.0],
                    [float(np.mean([r["auroc"] for r in one]))],
                    linestyle="none",
                    marker="*",
                    ms=13,
                    color=color[sae],
                    markeredgecolor="black",
                    markeredgewidth=0.6,
                    label=f"{sae}: 1-sparse",
                )
                handles.setdefault(f"{sae}: 1-sparse", star)
        for probe, kw, label in (
            ("dense", {"color": "black", "linestyle": "--", "lw": 1.6}, "dense probe"),
            ("diff_of_means", {"color": "0.5", "linestyle": "--", "lw": 1.1}, "diff of means"),
        ):
            ref = [r["auroc"] for r in in_split if r["probe"] == probe]
            if ref:
                handles.setdefault(label, ax.axhline(float(np.mean(ref)), label=label, **kw))
        for probe, (colour, style) in _PER_TOKEN_STYLE.items():
            ref = [r["auroc"] for r in in_split if r["probe"] == probe and r.get("sae") is None]
            if ref:
                label = f"per-token {probe}"
                line = ax.axhline(
                    float(np.mean(ref)), color=colour, linestyle=style, lw=1.2, label=label
                )
                handles.setdefault(label, line)
        n = next((r["n"] for r in in_split), None)
        n_pos = next((r["n_pos"] for r in in_split), None)
        ax.set_title(f"{_SPLIT_TITLES.get(split, split)}  (n={n}, {n_pos} pos)", fontsize=11)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(all_ks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(k) for k in all_ks])
        ax.set_xlabel("k (latents in the probe, log scale)", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=9)
    axes[0].set_ylabel("AUROC", fontsize=11)
    top = axes[0].get_ylim()[1]
    axes[0].set_ylim(top=min(top, 1.005))
    fig.legend(
        handles=list(handles.values()),
        labels=list(handles),
        loc="outside lower center",
        ncol=min(4, max(1, len(handles))),
        fontsize=8,
        frameon=False,
    )
    if title:
        fig.suptitle(title, fontsize=12)
    return save_figure(fig, path, fmt)


def _delta_cells(
    results: ProbeResults | Sequence[Mapping[str, Any]],
) -> tuple[list[str], list[str], dict[tuple[str, str], str], int]:
    """SAE names, split columns, formatted cells and the number of seeds averaged."""
    rows = list(results.reconstruction_delta if isinstance(results, ProbeResults) else results)
    if not rows:
        raise DataError(
            "no reconstruction-delta rows; run the suite with at least one SAE before tabulating"
        )
    saes = list(dict.fromkeys(r["sae"] for r in rows))
    splits = [s for s in SPLITS if any(r["split"] == s for r in rows)]
    n_seeds = len({r["seed"] for r in rows})
    cells: dict[tuple[str, str], str] = {}
    for sae in saes:
        for split in splits:
            sel = [r for r in rows if r["sae"] == sae and r["split"] == split]
            if not sel:
                cells[sae, split] = "n/a"
                continue
            delta = float(np.mean([r["delta"] for r in sel]))
            low = float(np.mean([r["delta_ci_low"] for r in sel]))
            high = float(np.mean([r["delta_ci_high"] for r in sel]))
            cells[sae, split] = f"{delta:.5f} [{low:.5f}, {high:.5f}]"
    return saes, splits, cells, n_seeds


def reconstruction_delta_markdown(results: ProbeResults | Sequence[Mapping[str, Any]]) -> str:
    """Markdown table: rows SAE, columns Train/Val/OOD, cells "delta [95 % CI]".

    delta = AUROC of the dense probe on the residual minus AUROC of the same probe trained on
    the SAE reconstruction; positive means the reconstruction lost task information. The
    interval is a paired bootstrap over the split's rows. Several seeds are averaged.
    """
    saes, splits, cells, n_seeds = _delta_cells(results)
    header = "| SAE | " + " | ".join(_TABLE_COLUMNS.get(s, s) for s in splits) + " |"
    lines = [header, "|---|" + "---|" * len(splits)]
    for sae in saes:
        lines.append(f"| {sae} | " + " | ".join(cells[sae, s] for s in splits) + " |")
    seeds = f", mean over {n_seeds} seeds" if n_seeds > 1 else ""
    lines.append("")
    lines.append(
        "AUROC(dense probe on residual) - AUROC(dense probe on SAE reconstruction); "
        f"[paired bootstrap 95 % CI]{seeds}."
    )
    return "\n".join(lines)


def plot_reconstruction_delta_table(
    results: ProbeResults | Sequence[Mapping[str, Any]], path: str | os.PathLike[str]
) -> Path:
    """The reconstruction-delta table as a small image (same cells as the markdown)."""
    path = Path(path)
    fmt = output_format(path)
    saes, splits, cells, _ = _delta_cells(results)
    fig = new_figure((2.2 + 2.4 * len(splits), 0.6 + 0.35 * (len(saes) + 1)))
    ax = fig.add_subplot()
    ax.axis("off")
    table = ax.table(
        cellText=[[cells[sae, s] for s in splits] for sae in saes],
        rowLabels=saes,
        colLabels=[_TABLE_COLUMNS.get(s, s) for s in splits],
        loc="center",
        cellLoc="center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    ax.set_title("dense AUROC - reconstruction AUROC [95 % CI]", fontsize=9)
    return save_figure(fig, path, fmt)
