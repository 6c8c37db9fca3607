"""write_report on synthetic study directories: a full one, and ones with stages missing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from synthetic_study import ALL_PARTS, make_study

from saeprobe.errors import DataError
from saeprobe.report import SECTIONS, write_report

RESULTS_KEYS = {
    "title", "setup", "headline", "sae_table", "chat_variants", "headline_by_pooling",
    "autointerp", "debug_findings", "dashboards", "sections", "outputs",
}  # fmt: skip


def section(html: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert match, f"section {anchor} missing"
    return match.group(1)


def external_refs(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="((?:https?:)?//[^"]*)"', html)


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> tuple[Path, str, dict]:
    study = make_study(tmp_path_factory.mktemp("study") / "out")
    files = write_report(study)
    return study, files.html.read_text(encoding="utf-8"), json.loads(files.results.read_text())


def test_full_study_has_every_section_and_no_gaps(full):
    _, html, _ = full
    for anchor, title in SECTIONS.items():
        body = section(html, anchor)
        assert "left out" not in body, anchor
        assert f"<h2>{title}</h2>" in html
    assert html.count('<section id="') == len(SECTIONS)
    assert external_refs(html) == []
    assert "<script src" not in html and "<link" not in html


def test_full_study_figures_are_inlined(full):
    study, html, _ = full
    # Pareto, histogram, 2 AUROC-vs-k, reconstruction, 2 TPR, 2 autointerp.
    assert html.count('src="data:image/png;base64,') == 9
    assert (study / "report_figures" / "tpr_own_threshold.png").is_file()
    assert (study / "report_figures" / "tpr_val_threshold.png").is_file()


def test_full_study_numbers_carry_intervals(full):
    _, html, _ = full
    headline = section(html, "headline")
    assert "0.950 [0.940, 0.960]" in headline  # dense OOD AUROC
    assert "-0.120 [-0.140, -0.100]" in headline  # relu-a's paired delta
    assert "beats every SAE&#x27;s best probe OOD by 0.05–0.12 AUROC" in headline
    assert "agrees with the study" in headline
    assert "0.500 [0.450, 0.550]" in section(html, "autointerp")


def test_sections_show_the_stage_contents(full):
    _, html, _ = full
    sae = section(html, "sae-table")
    assert "relu-a" in sae and "ΔLM loss" in sae and "AuxK" in sae
    chat = section(html, "chat-variants")
    assert "ft" in chat and "topk-a" in chat and "relu-a" not in chat
    assert "attention" in section(html, "per-token-probes")
    assert "evil_confidant" in section(html, "ood-breakdown")
    assert "Δ mean" in section(html, "comparisons")  # the second pooling
    debug = section(html, "debugging")
    assert "ending_period" in debug
    assert "&lt;b&gt;not bold&lt;/b&gt;" in debug  # example text is escaped
    dashboards = section(html, "dashboards")
    assert 'href="autointerp/relu-a/dashboard.html"' in dashboards
    assert 'href="debug/findings.html"' in dashboards


def test_results_json(full):
    study, _, results = full
    assert set(results) == RESULTS_KEYS
    headline = results["headline"]
    assert [r["sae"] for r in headline["rows"]] == ["relu-a", "topk-a", "ft"]
    assert headline["rows"][0]["architecture"] == "relu"
    assert headline["sentence"].startswith("The dense probe beats every SAE's")
    assert headline["pooling"] == "max"
    assert set(results["headline_by_pooling"]) == {"max", "mean"}
    setup = results["setup"]
    assert setup["model"] == "tiny" and setup["layer"] == 3
    assert setup["versions"]["saeprobe"]
    assert setup["stage_seconds"]["probe"] == 1.5
    assert setup["splits"]["ood"]["rows"] == 40
    assert [r["name"] for r in results["sae_table"]] == ["relu-a", "topk-a", "ft"]
    assert results["sae_table"][1]["auxk"] is True
    assert {r["name"] for r in results["chat_variants"]} == {"ft", "topk-a"}
    assert results["outputs"]["probe"] == "probe/results.json"
    assert results["outputs"]["probe:mean"] == "probe/pooling-mean/results.json"
    for link in results["dashboards"]:
        assert (study / link["href"]).is_file()
    assert results["sections"] == list(SECTIONS)


def test_rewrite_is_byte_identical(full):
    study, html, _ = full
    before = (study / "results.json").read_bytes()
    files = write_report(study)
    assert files.html.read_text(encoding="utf-8") == html
    assert files.results.read_bytes() == before


@pytest.mark.parametrize(
    "parts, gaps",
    [
        ((), set(SECTIONS)),  # setup: no data sizes without the dataset or probe stage
        (("sweep",), set(SECTIONS) - {"sae-table", "frontier", "chat-variants"}),
        (("probe",), {"sae-table", "frontier", "chat-variants", "autointerp", "debugging",
                      "dashboards"}),
        (tuple(p for p in ALL_PARTS if p != "autointerp"), {"autointerp"}),
    ],
)  # fmt: skip
def test_missing_stages_are_left_out_in_words(tmp_path, parts, gaps):
    files = write_report(make_study(tmp_path / "out", parts))
    html = files.html.read_text(encoding="utf-8")
    for anchor in SECTIONS:
        body = section(html, anchor)
        if anchor in gaps:
            assert 'class="missing"' in body and "left out" in body, anchor
        elif anchor not in ("headline",):
            assert "left out" not in body, anchor
    results = json.loads(files.results.read_text())
    assert set(results) == RESULTS_KEYS
    if "autointerp" not in parts:  # the synthetic config has interp: null
        assert "turns autointerp off (interp: null)" in section(html, "autointerp")
    if "probe" not in parts:
        assert results["headline"]["rows"] == []
        assert results["headline"]["sentence"].startswith("No headline")
        assert "headline table is left out" in section(html, "headline")
        assert "So this run" not in section(html, "headline")


def test_no_study_config_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match=r"no study_config\.json.*--out directory"):
        write_report(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        write_report(tmp_path / "nowhere")


def test_corrupt_stage_output_names_the_file(tmp_path):
    study = make_study(tmp_path / "out", ("probe",))
    (study / "probe" / "results.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=r"probe/results\.json is not valid JSON"):
        write_report(study)


def test_results_json_that_is_not_a_probe_output(tmp_path):
    study = make_study(tmp_path / "out", ())
    (study / "probe").mkdir()
    (study / "probe" / "results.json").write_text('{"rows": []}', encoding="utf-8")
    with pytest.raises(DataError, match="not a `saeprobe probe` results.json"):
        write_report(study)


def test_stage_output_of_the_wrong_shape_names_the_stage(tmp_path):
    study = make_study(tmp_path / "out", ("debug",))
    (study / "debug" / "findings.json").write_text('{"rank": 1}', encoding="utf-8")
    with pytest.raises(DataError, match=r"findings\.json holds a JSON dict.*--from debug"):
        write_report(study)
