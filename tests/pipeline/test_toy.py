import json

import pytest

from saeprobe.errors import ConfigError
from saeprobe.pipeline.toy import ToyConfig, run_toy
from saeprobe.sae.io import load_sae

SMALL = {"d": 32, "n_features": 128, "n_frequent": 4}


def test_topk_recovers_planted_features_on_a_small_problem(tmp_path):
    cfg = ToyConfig(architecture="topk", d_sae=256, batch_size=512, eval_rows=4096,
                    sae={"k": 4}, train={"steps": 600, "lr": 3e-3, "progress": False},
                    planted=SMALL)
    report = run_toy(cfg, out=tmp_path / "sae", json_path=tmp_path / "r.json")
    assert report["recovered_fraction"] >= 0.9
    assert report["l0"] == 4.0
    on_disk = json.loads((tmp_path / "r.json").read_text())
    for key in ("recovered_fraction", "mean_max_cosine", "l0", "fvu", "n_high_frequency",
                "dead_fraction", "seconds"):
        assert key in on_disk
    assert load_sae(tmp_path / "sae").d_sae == 256


def test_unknown_architecture():
    with pytest.raises(ConfigError, match="unknown SAE architecture"):
        run_toy(ToyConfig(architecture="nope"))
