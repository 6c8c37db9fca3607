"""The study config is validated in full before any work: typos name the key and the nearest
valid one, missing files are named, runs must exist, and the shipped configs validate."""

from pathlib import Path

import pytest
from study_helpers import tiny_study, write_study

from saeprobe.errors import ConfigError
from saeprobe.study.config import load_study_config
from saeprobe.study.runner import run_from_config

REPO = Path(__file__).resolve().parents[2]


def _fails(tmp_path, study, match):
    path = write_study(tmp_path, study)
    with pytest.raises(ConfigError, match=match):
        run_from_config(path, tmp_path / "out", log=lambda m: None)
    assert not (tmp_path / "out").exists(), "work started before the config was checked"


def test_misspelt_top_level_key_suggests_the_valid_one(tmp_path):
    study = tiny_study(tmp_path)
    study["probbe"] = study.pop("probe")
    _fails(tmp_path, study, r"unknown key probbe; did you mean 'probe'\?")


def test_misspelt_nested_key_names_its_path(tmp_path):
    study = tiny_study(tmp_path)
    study["sweep"]["phases"][0]["gird"] = study["sweep"]["phases"][0].pop("grid")
    _fails(tmp_path, study, r"sweep\.phases\.0\.gird; did you mean 'grid'\?")


def test_misspelt_autointerp_setting_fails_before_the_sweep(tmp_path):
    study = tiny_study(tmp_path)
    study["interp"]["autointerp"]["n_latent"] = 3
    _fails(tmp_path, study, r"interp\.autointerp: unknown key n_latent; did you mean 'n_latents'")


def test_missing_data_file_is_named(tmp_path):
    study = tiny_study(tmp_path)
    study["sweep"]["stores"]["chat"]["data"] = str(tmp_path / "nope.jsonl")
    _fails(tmp_path, study, r"sweep\.stores\.chat\.data: .*nope\.jsonl does not exist")


def test_probe_run_that_is_not_in_the_sweep(tmp_path):
    study = tiny_study(tmp_path)
    study["probe"]["saes"] = ["topk", "tpok"]
    _fails(tmp_path, study, r"probe\.saes \['tpok'\] are not runs of the sweep; choose from")


def test_unknown_from_stage(tmp_path):
    path = write_study(tmp_path, tiny_study(tmp_path))
    with pytest.raises(ConfigError, match="--from 'probes' is not a stage; choose from harvest"):
        run_from_config(path, tmp_path / "out", from_stage="probes", log=lambda m: None)


def test_stores_and_probe_inherit_the_study_model_and_layer(tmp_path):
    cfg = load_study_config(write_study(tmp_path, tiny_study(tmp_path)))
    assert {(s.model, s.layer) for s in cfg.sweep.stores.values()} == {("minilm", 3)}
    assert (cfg.probe.model, cfg.probe.layer) == ("minilm", 3)
    assert cfg.runs_needed == ["topk", "topk-ft"]  # relu is in the sweep but nothing reads it


@pytest.mark.parametrize("name", ["quickstart.yaml", "shared-data.yaml", "gemma-2-9b-it.yaml"])
def test_shipped_configs_validate(name, monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = load_study_config(REPO / "configs" / name)
    assert cfg.probe.saes


def test_gemma_dry_run_prints_the_plan_without_loading_anything(monkeypatch, capsys):
    import saeprobe.lm.models as models

    def no_loading(*a, **k):
        raise AssertionError("a dry run loaded a model")

    monkeypatch.setattr(models, "load_model", no_loading)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(REPO)
    lines: list[str] = []
    assert (
        run_from_config("configs/gemma-2-9b-it.yaml", None, dry_run=True, log=lines.append) is None
    )
    text = "\n".join(lines)
    assert "google/gemma-2-9b-it layer 20" in text
    for stage in ("harvest", "sweep", "dataset", "probe", "latents", "autointerp", "debug"):
        assert f"] {stage}" in text
    assert "FLOP" in text and "missing before a real run: probe.extra_saes" in text
    assert not (REPO / "runs" / "gemma-2-9b-it").exists()


def test_editing_a_data_file_changes_the_harvest_stage_key(tmp_path):
    import os

    from saeprobe.study.stages import STAGES

    harvest = next(s for s in STAGES if s.name == "harvest")
    cfg = load_study_config(write_study(tmp_path, tiny_study(tmp_path)))
    before = harvest.settings(cfg)
    chat = tmp_path / "chat.jsonl"
    chat.write_text(chat.read_text() + '{"text": "One more line."}\n')
    os.utime(chat, (1, 1))
    assert harvest.settings(cfg) != before
