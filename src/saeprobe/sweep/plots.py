"""Figures for an SAE sweep: the FVU-vs-L0 Pareto plot and firing-frequency histograms.

Everything draws on a private `matplotlib.figure.Figure` with an Agg canvas instead of pyplot:
pyplot keeps global state (current figure, backend), is not thread-safe, and may try to open a
window. Files are written through `atomic_write`, so an interrupted run never leaves a truncated
image that looks finished.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes

from saeprobe.errors import DataError
from saeprobe.figures import new_figure, output_format, save_figure

__all__ = ["pareto_frontier", "plot_frequency_histograms", "plot_pareto"]

_X_LABEL_L0 = "L0 (mean active latents per token, log scale)"
_Y_LABELS = {
    "fvu": "FVU (fraction of variance unexplained)",
    "nmse": "normalised MSE",
    "delta_lm_loss": "ΔLM loss with the SAE spliced in (nats/token)",
    "kl_divergence": "KL(clean ‖ spliced) (nats/token)",
}
_MAX_COLUMNS = 3


# ---------------------------------------------------------------------------------------------
# Pareto frontier
# ---------------------------------------------------------------------------------------------


def _as_float(value: Any) -> float | None:
    """A finite float, or None for anything that cannot be plotted (None, NaN, inf, text)."""
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def pareto_frontier(l0: Sequence[float], y: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points, sorted by increasing L0 (lower is better on both).

    A point is dominated when another has l0 <= and y <= with at least one strict. Points with a
    missing or non-finite coordinate are skipped. Of identical points only the first index is
    kept.
    """
    if len(l0) != len(y):
        raise DataError(
            f"pareto_frontier got {len(l0)} L0 values but {len(y)} y values; "
            "pass one y per L0 value"
        )
    points = []
    for i, (a, b) in enumerate(zip(l0, y, strict=True)):
        fa, fb = _as_float(a), _as_float(b)
        if fa is not None and fb is not None:
            points.append((fa, fb, i))
    # Sorting by (l0, y, index) puts, within equal L0, the best y first and, among identical
    # points, the lowest index first. Sweeping in that order, a point is non-dominated exactly
    # when its y is strictly below every y seen so far: an equal y at a larger-or-equal L0 is
    # dominated (or a duplicate), so strict comparison handles both cases.
    points.sort()
    frontier: list[int] = []
    best_y = math.inf
    for _, b, i in points:
        if b < best_y:
            frontier.append(i)
            best_y = b
    return frontier


# ---------------------------------------------------------------------------------------------
# Shared figure helpers
# ---------------------------------------------------------------------------------------------


def _series_colors(n: int) -> list[Any]:
    # Qualitative palettes keep architectures distinguishable; tab20 only when tab10 runs out.
    palette = colormaps["tab10" if n <= 10 else "tab20"].colors
    return [palette[i % len(palette)] for i in range(n)]


# ---------------------------------------------------------------------------------------------
# Pareto plot
# ---------------------------------------------------------------------------------------------


def _group_rows(
    rows: Sequence[Mapping[str, Any]], y: str, series: str
) -> dict[str, tuple[list[float], list[float]]]:
    """Plottable (l0, y) points per series, in order of first appearance."""
    groups: dict[str, tuple[list[float], list[float]]] = {}
    for n, row in enumerate(rows):
        l0_value, y_value = _as_float(row.get("l0")), _as_float(row.get(y))
        # L0 <= 0 (every latent dead) has no place on a log axis.
        if l0_value is None or y_value is None or l0_value <= 0:
            continue
        if series not in row:
            raise DataError(
                f"sweep row {n} has no {series!r} key; pass series=<key that labels each row>"
            )
        xs, ys = groups.setdefault(str(row[series]), ([], []))
        xs.append(l0_value)
        ys.append(y_value)
    return groups


def _draw_series(ax: Axes, label: str, xs: list[float], ys: list[float], color: Any) -> None:
    front = pareto_frontier(xs, ys)
    on_front = set(front)
    dominated = [i for i in range(len(xs)) if i not in on_front]
    # Dominated runs stay visible but faint, so the frontier reads as the series' result.
    if dominated:
        ax.scatter(
            [xs[i] for i in dominated],
            [ys[i] for i in dominated],
            color=color,
            alpha=0.35,
            s=22,
            linewidths=0,
        )
    ax.plot(
        [xs[i] for i in front],
        [ys[i] for i in front],
        color=color,
        marker="o",
        markersize=5,
        linewidth=1.8,
        label=label,
    )


def plot_pareto(
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    y: str | Sequence[str] = "fvu",
    series: str = "series",
    title: str | None = None,
) -> Path:
    """Scatter each metric of `y` against L0 (log x) per series, one panel per metric, and draw
    each series' Pareto frontier.

    Each row needs a series label under `series`, "l0", and the metrics. Rows with a missing or
    non-finite value are skipped, and so is a metric no row has (an encoder sweep has no ΔLM
    loss), unless no metric is left. The format follows the suffix of `path` (.png or .svg).
    """
    path = Path(path)
    fmt = output_format(path)
    metrics = [y] if isinstance(y, str) else list(y)
    panels = {m: _group_rows(rows, m, series) for m in metrics}
    panels = {m: groups for m, groups in panels.items() if groups}
    if not panels:
        raise DataError(
            f"no sweep row has finite positive 'l0' and finite {' or '.join(map(repr, metrics))}; "
            "evaluate the runs (or pass y=<metric key present in the rows>) before plotting"
        )
    labels = list(dict.fromkeys(label for groups in panels.values() for label in groups))
    colors = dict(zip(labels, _series_colors(len(labels)), strict=True))

    fig = new_figure((7.0 * len(panels), 5.0))
    for i, (metric, groups) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for label, (xs, ys) in groups.items():
            _draw_series(ax, label, xs, ys, colors[label])
        ax.set_xscale("log")
        ax.set_xlabel(_X_LABEL_L0, fontsize=11)
        ax.set_ylabel(_Y_LABELS.get(metric, metric), fontsize=11)
        ax.tick_params(labelsize=10)
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", alpha=0.15)
        ax.legend(fontsize=9)
    if title:
        fig.suptitle(title, fontsize=12)
    return save_figure(fig, path, fmt)


# ---------------------------------------------------------------------------------------------
# Firing-frequency histograms
# ---------------------------------------------------------------------------------------------


def _checked_frequencies(key: str, label: str, values: Any) -> np.ndarray:
    freq = np.asarray(values, dtype=np.float64).ravel()
    # Frequencies are fractions of tokens; raw counts or NaNs would silently distort the plot.
    if freq.size and (not np.all(np.isfinite(freq)) or freq.min() < 0 or freq.max() > 1):
        raise DataError(
            f"firing frequencies for {key!r} / {label!r} must be finite fractions in [0, 1]; "
            "divide fire counts by the number of tokens"
        )
    return freq


def _threshold_text(threshold: float) -> str:
    return f"{threshold * 100:g} %"


def _shared_bins(
    panels: dict[str, list[tuple[str, np.ndarray]]], threshold: float, n_bins: int = 40
) -> np.ndarray:
    """One set of bin edges in log10 space for every panel, so panels compare by eye."""
    live = [np.log10(f[f > 0]) for entries in panels.values() for _, f in entries]
    live = [v for v in live if v.size]
    lo = min([float(v.min()) for v in live] + [math.log10(threshold)])
    # Frequencies are at most 1, so the right edge is log10(1) = 0.
    hi = 0.0
    lo = math.floor(lo - 1e-9)
    if lo >= hi:
        lo = hi - 1.0
    return np.linspace(lo, hi, n_bins + 1)


def _draw_panel(
    ax: Axes,
    key: str,
    entries: list[tuple[str, np.ndarray]],
    bins: np.ndarray,
    threshold: float,
) -> None:
    # A sequential palette: entries are usually ordered by sparsity, so colour tracks L0.
    cmap = colormaps["viridis"]
    for j, (label, freq) in enumerate(entries):
        dead = int(np.count_nonzero(freq == 0))
        text = f"{label} ({dead} dead)" if dead else label
        live = np.log10(freq[freq > 0])
        color = cmap(0.85 * j / max(len(entries) - 1, 1))
        ax.hist(live, bins=bins, histtype="step", linewidth=1.4, color=color, label=text)
    ax.axvline(
        math.log10(threshold),
        color="black",
        linestyle="--",
        linewidth=1.0,
        label=_threshold_text(threshold),
    )
    ax.set_title(key, fontsize=11)
    ax.tick_params(labelsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def plot_frequency_histograms(
    panels: Mapping[str, Sequence[tuple[str, np.ndarray]]],
    path: str | os.PathLike[str],
    threshold: float = 0.1,
    title: str | None = None,
) -> Path:
    """One panel per key, overlaying step histograms of log10 firing frequency per entry.

    Dead latents (frequency 0) have no logarithm; they are left out of the histogram and
    counted in the entry's legend label instead. A dashed line marks `threshold`, the
    high-frequency cut-off. The format follows the suffix of `path` (.png or .svg).
    """
    path = Path(path)
    fmt = output_format(path)
    if not 0 < threshold <= 1:
        raise DataError(
            f"threshold {threshold} is not a firing frequency; pass a fraction in (0, 1]"
        )
    checked = {
        str(key): [(str(label), _checked_frequencies(key, label, f)) for label, f in entries]
        for key, entries in panels.items()
    }
    if not any(f.size for entries in checked.values() for _, f in entries):
        raise DataError(
            "no firing frequencies to plot; pass at least one non-empty frequency array "
            "per architecture"
        )

    bins = _shared_bins(checked, threshold)
    n_cols = min(_MAX_COLUMNS, len(checked))
    n_rows = math.ceil(len(checked) / n_cols)
    fig = new_figure((4.2 * n_cols, 3.3 * n_rows))
    axes = fig.subplots(n_rows, n_cols, sharex=True, squeeze=False).ravel()
    for ax, (key, entries) in zip(axes, checked.items(), strict=False):
        _draw_panel(ax, key, entries, bins, threshold)
    for idx in range(len(checked), len(axes)):
        axes[idx].set_visible(False)
        # sharex hides tick labels on all but the bottom row; the panel above an empty slot is
        # now the bottom of its column and needs them back.
        if idx >= n_cols:
            axes[idx - n_cols].tick_params(labelbottom=True)
    axes[0].set_xlim(bins[0], bins[-1])

    fig.supxlabel("log10 firing frequency", fontsize=11)
    fig.supylabel("latents", fontsize=11)
    if title:
        fig.suptitle(title, fontsize=12)
    return save_figure(fig, path, fmt)
