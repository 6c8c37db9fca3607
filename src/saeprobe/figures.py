"""Figure plumbing shared by every plot: a private Agg figure and an atomic PNG/SVG write.

Plots draw on a `matplotlib.figure.Figure` with its own Agg canvas instead of pyplot: pyplot
keeps global state (current figure, backend), is not thread-safe and may try to open a window.
Writes go through `atomic_write`, so an interrupted run never leaves a truncated image.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from saeprobe.errors import DataError
from saeprobe.io_utils import atomic_write

DPI = 150
FORMATS = {".png": "png", ".svg": "svg"}


def output_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"cannot write figure {path}: unsupported suffix {path.suffix!r}; use .png or .svg"
        )
    return fmt


def new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # explicit Agg canvas: independent of the global backend
    return fig


def save_figure(fig: Figure, path: Path, fmt: str) -> Path:
    # The temporary file ends in ".tmp", so the format must be given, not inferred.
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=DPI))
    return path
