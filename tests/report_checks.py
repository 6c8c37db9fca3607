"""What a real browser must see in a study's report.html; shared by the report's own browser
test and the tests of `saeprobe run` / `saeprobe quickstart`.

    from browser import open_page
    from report_checks import check_report_in_browser

    with open_page(tmp_path) as (page, errors):
        check_report_in_browser(page, errors, out / "report.html", tmp_path / "report.png")
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from saeprobe.report import SECTIONS

# Every attribute that could make the page fetch something.
_EXTERNAL_JS = """() => Array.from(document.querySelectorAll('[src], [href]'))
  .map(e => e.getAttribute('src') || e.getAttribute('href'))
  .filter(u => /^(https?:)?\\/\\//i.test(u))"""
_IMAGES_JS = """() => Array.from(document.images).map(i => ({
  alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight }))"""
_LINKS_JS = """() => Array.from(document.querySelectorAll('a[href]'))
  .filter(a => !a.getAttribute('href').startsWith('#'))
  .map(a => ({ text: a.textContent, url: a.href }))"""
_COLUMN_JS = """([t, c]) => Array.from(document.querySelectorAll('table.sortable')[t].tBodies[0].rows)
  .map(r => r.cells[c].textContent.trim())"""
# A sortable table and a numeric column in it whose values are not already in order.
_SORT_TARGET_JS = """() => {
  const tables = Array.from(document.querySelectorAll('table.sortable'));
  for (let t = 0; t < tables.length; t++) {
    const rows = Array.from(tables[t].tBodies[0].rows);
    if (rows.length < 3) continue;
    for (let c = 0; c < rows[0].cells.length; c++) {
      const v = rows.map(r => parseFloat(r.cells[c].textContent));
      if (v.some(isNaN)) continue;
      const sorted = v.slice().sort((a, b) => a - b);
      if (v.some((x, i) => x !== sorted[i])) return [t, c];
    }
  }
  return null;
}"""


def _numbers(values: list[str]) -> list[float]:
    return [float(v.split(" ")[0]) for v in values]


def _check_sorting(page) -> None:
    target = page.evaluate(_SORT_TARGET_JS)
    assert target is not None, "no sortable table with an unsorted numeric column"
    t, c = target
    header = page.locator("table.sortable").nth(t).locator("th").nth(c)
    header.click()
    ascending = _numbers(page.evaluate(_COLUMN_JS, [t, c]))
    assert ascending == sorted(ascending), f"table {t} column {c} not sorted ascending"
    header.click()
    descending = _numbers(page.evaluate(_COLUMN_JS, [t, c]))
    assert descending == sorted(descending, reverse=True), f"table {t} column {c} not descending"


def _check_links(page, report_path: Path) -> None:
    links = page.evaluate(_LINKS_JS)
    for link in links:
        url = urlparse(link["url"])
        assert url.scheme == "file", f"link {link['text']!r} leaves the study: {link['url']}"
        target = Path(unquote(url.path))
        assert target.is_file(), f"link {link['text']!r} points at missing {target}"
    dashboards = page.locator("#dashboards a[href]")
    if dashboards.count():
        # Follow one link for real: the browser must load it from the report's location.
        href = dashboards.first.get_attribute("href")
        dashboards.first.click()
        page.wait_for_load_state()
        assert page.url.endswith(href), f"dashboard link went to {page.url}"
        page.go_back()
        page.wait_for_load_state()
        assert Path(unquote(urlparse(page.url).path)) == report_path.resolve()


def check_report_in_browser(
    page, errors: list[str], report_path: str | Path, screenshot_path: str | Path
) -> None:
    """Load the report; assert every section is there, every figure has a size, no console
    errors, no external asset, every link resolves, and a table sorts on a header click. The
    screenshot goes to `screenshot_path`, and to $SAEPROBE_SCREENSHOT_DIR when that is set."""
    report_path = Path(report_path)
    screenshot_path = Path(screenshot_path)
    page.goto(report_path.resolve().as_uri())
    page.wait_for_load_state("load")
    for anchor, title in SECTIONS.items():
        section = page.locator(f"section#{anchor}")
        assert section.count() == 1, f"section #{anchor} missing"
        assert section.locator("h2").inner_text().strip() == title
    images = page.evaluate(_IMAGES_JS)
    for img in images:
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, f"empty figure {img['alt']!r}"
    assert page.evaluate(_EXTERNAL_JS) == [], "the report references external assets"
    page.screenshot(path=str(screenshot_path), full_page=True)
    shots = os.environ.get("SAEPROBE_SCREENSHOT_DIR")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot_path, Path(shots) / screenshot_path.name)
    _check_sorting(page)
    _check_links(page, report_path)
    assert errors == [], f"console errors: {errors}"
