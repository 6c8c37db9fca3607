"""The study's two autointerp figures (seed_spec §7 F.7).

- `plot_score_vs_l0`: average autointerp score against L0, one line per architecture (series),
  uniform and frequency-weighted averages side by side, 95 % bootstrap intervals as bars.
- `plot_score_vs_frequency`: mean score per latent-frequency bin against the bin's median
  frequency (log x), one line per SAE of the chosen series (JumpReLU against JumpReLU-QF),
  darker lines for larger L0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib import colormaps

from saeprobe.errors import DataError
from saeprobe.figures import new_figure, output_format, save_figure

_PANELS = (("uniform_mean", "uniform average"), ("frequency_weighted_mean", "frequency-weighted"))
_Y_LABEL = {
    "simulation": "autointerp score (Spearman, simulation)",
    "detection": "autointerp score (balanced accuracy, detection)",
    "fuzzing": "autointerp score (balanced accuracy, fuzzing)",
}


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def plot_score_vs_l0(
    rows: Sequence[Mapping[str, Any]], path: str | Path, method: str, title: str | None = None
) -> Path:
    """Rows: {series, l0, <method>: aggregates}. Rows without a finite L0 > 0 are skipped."""
    path = Path(path)
    fmt = output_format(path)
    usable = [r for r in rows if (_finite(r.get("l0")) or 0) > 0 and r.get(method)]
    if not usable:
        raise DataError(f"no SAE has both an L0 and {method} scores; nothing to plot")
    series = list(dict.fromkeys(str(r["series"]) for r in usable))
    palette = colormaps["tab10" if len(series) <= 10 else "tab20"].colors
    colors = {s: palette[i % len(palette)] for i, s in enumerate(series)}
    fig = new_figure((12.0, 4.8))
    axes = [fig.add_subplot(1, 2, i + 1) for i in range(2)]
    for ax, (key, label) in zip(axes, _PANELS, strict=True):
        for s in series:
            pts = sorted(  # by L0 only: two SAEs of a series may share an L0 (a finetune)
                ((float(r["l0"]), r[method]) for r in usable if str(r["series"]) == s),
                key=lambda p: p[0],
            )
            pts = [(x, a) for x, a in pts if _finite(a.get(key)) is not None]
            if not pts:
                continue
            xs = [x for x, _ in pts]
            ys = [a[key] for _, a in pts]
            err = [
                [y - a.get(f"{key}_ci_low", y) for (_, a), y in zip(pts, ys, strict=True)],
                [a.get(f"{key}_ci_high", y) - y for (_, a), y in zip(pts, ys, strict=True)],
            ]
            ax.errorbar(xs, ys, yerr=err, marker="o", ms=5, lw=1.6, capsize=3,
                        color=colors[s], label=s)  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("L0 (mean active latents per token, log scale)")
        ax.set_ylabel(_Y_LABEL.get(method, method))
        ax.set_title(label)
        ax.grid(True, alpha=0.35)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, fmt)


def plot_score_vs_frequency(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    method: str,
    series: Sequence[str],
    title: str | None = None,
) -> Path:
    """Per-bin mean score against the bin's median latent frequency, for the SAEs of `series`."""
    path = Path(path)
    fmt = output_format(path)
    chosen = [r for r in rows if str(r["series"]) in series and r.get(method)]
    chosen = [r for r in chosen if r[method].get("per_quantile")]
    if not chosen:
        raise DataError(
            f"no SAE of series {', '.join(series)} has {method} scores per frequency bin"
        )
    cmaps = ["Blues", "Oranges", "Greens", "Purples", "Reds"]
    fig = new_figure((7.5, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    for k, s in enumerate(series):
        members = sorted((r for r in chosen if str(r["series"]) == s),
                         key=lambda r: _finite(r.get("l0")) or 0.0)  # fmt: skip
        cmap = colormaps[cmaps[k % len(cmaps)]]
        for j, r in enumerate(members):
            shade = 0.45 + 0.5 * (j + 1) / max(len(members), 1)
            bins = r[method]["per_quantile"]
            xs = [max(b["frequency_median"], 1e-12) for b in bins]
            ys = [b["mean"] for b in bins]
            l0 = _finite(r.get("l0"))
            label = f"{s}, L0 {l0:.3g}" if l0 is not None else s
            ax.plot(xs, ys, marker="o", ms=4, lw=1.5, color=cmap(shade), label=label)
    ax.set_xscale("log")
    ax.set_xlabel("latent firing frequency (median of the bin, log scale)")
    ax.set_ylabel(_Y_LABEL.get(method, method))
    ax.grid(True, alpha=0.35)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    return save_figure(fig, path, fmt)
