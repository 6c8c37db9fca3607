"""A real headless browser for HTML tests: Playwright driving Debian's Chromium.

`open_page(tmp_path)` yields a Playwright page and the list of console errors and uncaught page
errors seen so far. It skips the test, with a message that says what to install, when the
`playwright` package or a Chromium binary is missing. Playwright's own browser download is never
used (`playwright install` needs the network): `.ci/run` installs Debian's `chromium`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str | None:
    explicit = os.environ.get("SAEPROBE_CHROMIUM")
    if explicit and Path(explicit).is_file():
        return explicit
    for candidate in _CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return shutil.which("chromium")


@contextmanager
def open_page(tmp_path: Path) -> Iterator[tuple[object, list[str]]]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser test needs the playwright package: pip install playwright")
    executable = chromium_path()
    if executable is None:
        pytest.skip("browser test needs Chromium: apt-get install -y chromium")
    errors: list[str] = []
    profile = tmp_path / "chromium-profile"
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page, errors
        finally:
            context.close()
