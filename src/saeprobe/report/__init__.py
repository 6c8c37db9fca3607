"""The study's report: one self-contained report.html and a machine-readable results.json."""

from saeprobe.report.build import SECTIONS, ReportFiles, write_report
from saeprobe.report.headline import headline_rows, headline_sentence, headline_table

__all__ = [
    "SECTIONS",
    "ReportFiles",
    "headline_rows",
    "headline_sentence",
    "headline_table",
    "write_report",
]
