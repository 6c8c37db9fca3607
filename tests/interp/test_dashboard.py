"""The latent dashboard: one self-contained page; in a real headless Chromium the search box
filters the latents and the page logs no errors."""

import json
import re

from browser import open_page

from saeprobe.interp.autointerp import AutointerpConfig, run_autointerp
from saeprobe.interp.dashboard import write_dashboard
from saeprobe.interp.records import LatentRecords


def _page(tiny_records, tmp_path):
    cfg = AutointerpConfig(latents=tiny_records, out=tmp_path / "ai", explainer="baseline",
                           n_latents=5, n_bootstrap=20, progress=False)  # fmt: skip
    report = run_autointerp(cfg, log=lambda _: None)
    page = write_dashboard(tiny_records, tmp_path / "dash.html", tmp_path / "ai")
    return page, report


def test_dashboard_is_self_contained(tiny_records, tmp_path):
    page, report = _page(tiny_records, tmp_path)
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<link" not in text and "<script src" not in text
    data = json.loads(re.search(r"id='data'>(.*?)</script>", text, re.S).group(1))
    rec = LatentRecords(tiny_records)
    assert {entry["id"] for entry in data["latents"]} == set(rec.live.tolist())
    explained = {r["latent"]: r["explanation"] for r in report["latents"]}
    for entry in data["latents"]:
        assert ("interp" in entry) == (entry["id"] in explained)
        assert entry["top"] and sum(entry["hist"]["counts"]) > 0


def test_dashboard_search_in_a_real_browser(tiny_records, tmp_path):
    page_path, report = _page(tiny_records, tmp_path)
    n_live = int(LatentRecords(tiny_records).live.size)
    target = report["latents"][0]
    with open_page(tmp_path) as (page, errors):
        page.goto(page_path.as_uri())
        assert page.locator("#count").inner_text() == f"{n_live} of {n_live} latents"
        page.fill("#search", str(target["latent"]))
        shown = page.locator("#list li").all_inner_texts()
        assert any(t.startswith(f"latent {target['latent']}") for t in shown)
        assert len(shown) < n_live
        page.locator("#list li").first.click()
        assert page.locator("#latent-title").inner_text().startswith("latent ")
        page.fill("#search", str(target["latent"]))
        page.locator("#list li", has_text=f"latent {target['latent']}").first.click()
        assert page.locator("#latent-title").inner_text() == f"latent {target['latent']}"
        assert page.locator("#explanation").inner_text() == target["explanation"]
        assert page.locator("#detail svg rect").count() > 0
        assert page.locator("#detail .ex").count() > 0
        page.fill("#search", "no-such-latent-zzz")
        assert page.locator("#count").inner_text() == f"0 of {n_live} latents"
        assert errors == []
