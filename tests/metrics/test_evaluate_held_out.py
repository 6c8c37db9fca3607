"""`saeprobe evaluate` says whether the tokens it scored were held out from the SAE's training,
warns when they were not, and evaluates a range the user picks."""

import json

import pytest
from click.testing import CliRunner

from saeprobe.cli import main
from saeprobe.errors import ConfigError
from saeprobe.metrics.evaluate import EvaluateConfig, evaluate_sae
from saeprobe.sae import create_sae
from saeprobe.sae.io import save_sae
from saeprobe.train.from_store import StoreTrainConfig, train_from_store


def _train(store, out, **kw):
    cfg = StoreTrainConfig(
        acts=store, out=out, layer=3, architecture="topk", d_sae=32, batch_size=256,
        sae={"k": 4}, train={"steps": 2, "progress": False}, eval_batches=1, **kw,
    )  # fmt: skip
    train_from_store(cfg)
    return out


def _evaluate(store, sae, **kw):
    warned = []
    cfg = EvaluateConfig(sae=sae, acts=store, layer=3, lm=False, **kw)
    return evaluate_sae(cfg, log=warned.append), warned


@pytest.fixture(scope="module")
def holdout_sae(store, tmp_path_factory):
    return _train(store, tmp_path_factory.mktemp("ho") / "sae", holdout_tokens=1000)


def test_the_held_out_tail_is_reported_as_held_out(store, holdout_sae):
    cfg = json.loads((holdout_sae / "cfg.json").read_text())
    assert cfg["metadata"]["train_rows"] == [0, 2000]
    report, warned = _evaluate(store, holdout_sae, eval_tokens=1000)
    assert report["eval_rows"] == [2000, 3000] and report["eval_held_out"] is True
    assert report["train_rows"] == [0, 2000] and not warned


@pytest.mark.parametrize("kw", [{"eval_tokens": 1500}, {"eval_range": (0, 500)}])
def test_training_tokens_are_flagged_and_warned_about(store, holdout_sae, kw):
    report, warned = _evaluate(store, holdout_sae, **kw)
    assert report["eval_held_out"] is False
    assert (
        len(warned) == 1
        and "overlap the tokens this SAE was trained on ([0, 2000))" in warned[0]
        and "\n" not in warned[0]
    )
    if "eval_range" in kw:
        assert report["eval_rows"] == [0, 500]


def test_an_sae_trained_on_the_whole_store_warns_on_the_default_range(store, tmp_path):
    report, warned = _evaluate(store, _train(store, tmp_path / "all"), eval_tokens=1000)
    assert report["eval_held_out"] is False and warned


def test_an_sae_without_training_provenance_is_unknown(store, tmp_path):
    save_sae(create_sae({"architecture": "relu", "d_in": 384, "d_sae": 32}), tmp_path / "bare")
    report, warned = _evaluate(store, tmp_path / "bare", eval_tokens=500)
    assert report["eval_held_out"] is None and "does not record" in report["eval_held_out_reason"]
    assert not warned


def test_a_range_outside_the_store_is_a_config_error(store, holdout_sae):
    with pytest.raises(ConfigError, match="inside the store's 3000 tokens"):
        _evaluate(store, holdout_sae, eval_range=(2500, 4000))


def test_cli_eval_range_and_warning(store, holdout_sae, tmp_path):
    out = tmp_path / "ev.json"
    args = ["--sae", str(holdout_sae), "--acts", str(store), "--json", str(out), "--no-lm"]
    r = CliRunner().invoke(main, ["evaluate", *args, "--eval-range", "100", "600"])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["eval_rows"] == [100, 600]
    assert r.stderr.startswith("warning: tokens [100, 600)") and "--eval-range" in r.stderr
