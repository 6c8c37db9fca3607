"""Number and table formatting for generated doc blocks: every block kind formats through here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DECIMALS = 3
MISSING = "–"
MINUS = "−"


def num(x: float | None, decimals: int = DECIMALS) -> str:
    """0.983; None is a dash."""
    if x is None:
        return MISSING
    return f"{x:.{decimals}f}"


def signed(x: float | None, decimals: int = DECIMALS) -> str:
    """+0.012 / −0.042 (a real minus sign), for differences."""
    if x is None:
        return MISSING
    text = f"{x:+.{decimals}f}"
    return text.replace("-", MINUS)


def interval(x: float | None, low: float | None, high: float | None) -> str:
    """0.983 [0.977, 0.988]."""
    if x is None:
        return MISSING
    return f"{num(x)} [{num(low)}, {num(high)}]"


def signed_interval(x: float | None, low: float | None, high: float | None) -> str:
    """−0.030 [−0.040, −0.021]."""
    if x is None:
        return MISSING
    return f"{signed(x)} [{signed(low)}, {signed(high)}]"


def span(low: float | None, high: float | None) -> str:
    """0.940–0.959 (a range, not an interval)."""
    if low is None or high is None:
        return MISSING
    return f"{num(low)}–{num(high)}"


def percent(x: float | None, decimals: int = 1) -> str:
    """0.7104 -> 71.0 %."""
    if x is None:
        return MISSING
    return f"{100 * x:.{decimals}f} %"


def metric(x: object) -> str:
    """A sweep metric as the sweep's own sweep.md writes it: 4 significant digits, ints whole."""
    if x is None:
        return MISSING
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def c_value(c: float | None) -> str:
    """A regularisation strength: 10, 1, 0.1, 1e-05."""
    return MISSING if c is None else f"{c:g}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(cell: object) -> str:
    return str(cell).replace("\n", " ").replace("|", "\\|")
