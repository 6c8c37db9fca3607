"""A tiny HTML vocabulary for one self-contained, printable report.

Everything is inline: CSS, a few lines of JavaScript that sort tables, and figures as base64
PNG. The file reads offline, from a USB stick, or in an archive years later; no asset can go
missing because there are none.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

CSS = """
:root { --fg:#1a1a1a; --muted:#666; --line:#ddd; --accent:#2456a6; --bg-alt:#f6f7f9; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 6px; }
p.muted, .muted { color: var(--muted); }
nav ol { columns: 2; font-size: 14px; }
a { color: var(--accent); }
.headline { background: #eef3fb; border-left: 4px solid var(--accent); padding: 10px 16px; }
.headline p { margin: 6px 0; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: right; }
th { background: var(--bg-alt); overflow-wrap: anywhere; }
table.sortable th { cursor: pointer; user-select: none; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
td.text, th.text { text-align: left; }
td:not(.text) { white-space: nowrap; }  /* "0.983 [0.977, 0.988]" stays on one line */
figure { margin: 12px 0 20px; }
figure img { max-width: min(100%, 900px); height: auto; border: 1px solid var(--line); }
figcaption { font-size: 13px; color: var(--muted); }
.missing { color: var(--muted); font-style: italic; }
.scroll { overflow-x: auto; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  nav, .no-print { display: none; }
  h2 { break-before: auto; break-after: avoid; }
  figure, table { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  .scroll { overflow: visible; }  /* paper cannot scroll: wide tables shrink instead */
  table { font-size: 9px; }
  td:not(.text) { white-space: normal; }
  td.text { overflow-wrap: anywhere; }
  figure img { max-width: 100%; }
}
"""

# Click a header to sort by that column; numbers sort numerically (an interval "0.91 [..]"
# sorts by its estimate), blanks last.
SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var asc = !th.classList.contains('sorted-asc');
      table.querySelectorAll('th').forEach(function (h) {
        h.classList.remove('sorted-asc', 'sorted-desc'); });
      th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var text = row.cells[col] ? row.cells[col].textContent.trim() : '';
        var num = parseFloat(text);
        return isNaN(num) ? text : num;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === '' && y !== '') return 1;
        if (y === '' && x !== '') return -1;
        if (typeof x === typeof y) return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        return typeof x === 'number' ? -1 : 1;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats to `digits` decimals, None and NaN blank."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    return str(value)


def interval(estimate: Any, low: Any, high: Any, digits: int = 3, signed: bool = False) -> str:
    """'0.912 [0.897, 0.925]', or the estimate alone when the interval is missing. Always fixed
    point: an interval reads against its estimate, so all three share one format; `signed`
    writes differences as '+0.012 [-0.003, +0.027]'."""
    if estimate is None:
        return ""
    sign = "+" if signed else ""

    def fixed(v: Any) -> str:
        return f"{float(v):{sign}.{digits}f}"

    if low is None or high is None:
        return fixed(estimate)
    return f"{fixed(estimate)} [{fixed(low)}, {fixed(high)}]"


def _is_text(column: Sequence[Any]) -> bool:
    for value in column:
        if value in (None, ""):
            continue
        try:
            float(str(value).split(" ")[0])
        except ValueError:
            return True
    return False


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None) -> str:
    """A sortable table; cells are escaped; text columns align left."""
    rows = [[fmt(c) for c in row] for row in rows]
    if not rows:
        return missing("no rows")
    text_cols = {i for i in range(len(headers)) if _is_text([r[i] for r in rows])}

    def cls(i: int) -> str:
        return ' class="text"' if i in text_cols else ""

    head = "".join(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{esc(c)}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    # Wide tables scroll sideways on screen instead of widening the page.
    return (
        f'<div class="scroll"><table class="sortable">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def figure(png: Path, caption: str) -> str:
    """The PNG inlined as a data URI, or a note when the run did not produce it."""
    if not png.is_file():
        return missing(f"figure not produced: {png.name}")
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    """A two-column fact list (not sortable: the order is the reading order); blanks dropped."""
    rows = "".join(
        f'<tr><th class="text">{esc(k)}</th><td class="text">{esc(fmt(v))}</td></tr>'
        for k, v in pairs
        if v not in (None, "")
    )
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


def missing(text: str) -> str:
    return f'<p class="missing">{esc(text)}</p>'


def paragraph(text: str, cls: str | None = None) -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{esc(text)}</p>"


def paragraph_html(inner: str) -> str:
    """A paragraph of already-rendered HTML (e.g. text with a link in it)."""
    return f"<p>{inner}</p>"


def link(href: str, text: str) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def section(anchor: str, title: str, body: str | Iterable[str]) -> str:
    content = body if isinstance(body, str) else "".join(body)
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{content}</section>'


def page(title: str, subtitle: str, sections: Mapping[str, tuple[str, str]]) -> str:
    """The whole document: `sections` maps anchor -> (title, rendered section)."""
    toc = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, (t, _) in sections.items())
    body = "".join(s for _, s in sections.values())
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{CSS}</style></head><body>"
        f'<header><h1>{esc(title)}</h1><p class="muted">{esc(subtitle)}</p></header>'
        f"<nav><ol>{toc}</ol></nav>{body}"
        f"<script>{SORT_JS}</script></body></html>\n"
    )
