"""The report in a real headless Chromium (skips cleanly without playwright or chromium)."""

from __future__ import annotations

import pytest
from browser import open_page
from report_checks import check_report_in_browser
from synthetic_study import make_study

from saeprobe.report import write_report


def test_report_in_browser(tmp_path):
    files = write_report(make_study(tmp_path / "out"))
    with open_page(tmp_path) as (page, errors):
        check_report_in_browser(page, errors, files.html, tmp_path / "report.png")
    assert (tmp_path / "report.png").stat().st_size > 0


def test_browser_check_catches_a_missing_dashboard(tmp_path):
    study = make_study(tmp_path / "out")
    files = write_report(study)
    (study / "autointerp" / "topk-a" / "dashboard.html").unlink()
    with open_page(tmp_path) as (page, errors):
        with pytest.raises(AssertionError, match="missing"):
            check_report_in_browser(page, errors, files.html, tmp_path / "report.png")


def test_browser_check_catches_a_broken_figure(tmp_path):
    study = make_study(tmp_path / "out")
    files = write_report(study)
    html = files.html.read_text(encoding="utf-8")
    start = html.index("data:image/png;base64,") + len("data:image/png;base64,")
    files.html.write_text(html[:start] + "AAAA" + html[start + 4 :], encoding="utf-8")
    with open_page(tmp_path) as (page, errors):
        with pytest.raises(AssertionError, match="empty figure"):
            check_report_in_browser(page, errors, files.html, tmp_path / "report.png")
