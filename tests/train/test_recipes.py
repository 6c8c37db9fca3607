"""Training recipes: the Gemma Scope preset fills only what the user left out, its schedule has
the recipe's shape, and the saved cfg.json records every value it set."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

from saeprobe.cli import main
from saeprobe.errors import ConfigError
from saeprobe.train import RunSpec, TensorSource, TrainConfig, Trainer
from saeprobe.train.recipes import RECIPES, sae_values, train_values
from saeprobe.train.schedule import lr_at, sparsity_scale_at
from saeprobe.train.toy import ToyConfig, build_runs

GS = RECIPES["gemma-scope"]


def test_cosine_warm_up_from_a_tenth_of_the_rate():
    cfg = TrainConfig(steps=10_000, lr_warmup="cosine", lr_warmup_steps=1000, lr_decay_steps=0)
    lr = [lr_at(s, cfg, 7e-5) / 7e-5 for s in (0, 250, 500, 1000, 9999)]
    expected = [0.1, 0.1 + 0.9 * (1 - math.cos(math.pi / 4)) / 2, 0.55, 1.0, 1.0]
    assert lr == pytest.approx(expected)
    linear = TrainConfig(steps=10_000, lr_warmup_steps=1000, lr_decay_steps=0)
    assert lr_at(250, linear, 1.0) == pytest.approx(0.325)
    assert lr[1] < 0.325  # cosine starts slower than linear


def test_a_warm_up_longer_than_the_run_is_literal():
    cfg = TrainConfig(steps=20, sparsity_warmup_steps=10_000, lr_warmup="cosine",
                      lr_warmup_steps=1000, lr_decay_steps=0)  # fmt: skip
    assert sparsity_scale_at(19, cfg) == pytest.approx(20 / 10_000)
    assert lr_at(19, cfg, 1.0) < 0.11


def test_the_preset_fills_only_what_is_not_given():
    assert "lr" not in train_values("gemma-scope", {"lr": 1e-3})
    assert train_values("gemma-scope", {})["adam_betas"] == (0.0, 0.999)
    assert sae_values("gemma-scope", "jumprelu", {"bandwidth": 0.05}) == {
        "encoder_init_scale": 1.0, "threshold_init": 0.001, "aux_coefficient": 0.0,
    }  # fmt: skip
    # Settings an architecture does not have are not forced on it; AuxK stays for TopK.
    assert sae_values("gemma-scope", "topk", {}) == {"encoder_init_scale": 1.0}
    assert train_values(None, {}) == {} and sae_values(None, "relu", {}) == {}
    with pytest.raises(ConfigError, match="unknown recipe 'gemma'; choose one of: gemma-scope"):
        train_values("gemma", {})


def test_defaults_are_unchanged_without_a_recipe():
    train, spec = build_runs(ToyConfig(architecture="jumprelu"))
    assert (train.lr, train.adam_betas, train.lr_warmup, train.b_dec_init) == (
        3e-3, (0.9, 0.999), "linear", "mean",
    )  # fmt: skip
    assert (spec.sae.bandwidth, spec.sae.encoder_init_scale, spec.sae.aux_coefficient) == (
        0.01, 0.1, 1 / 32,
    )  # fmt: skip
    # Checkpoints written before lr_warmup and b_dec_init existed still match their fingerprint;
    # max_grad_norm counts, because its default is no longer what older runs trained with.
    assert set(train.resume_fingerprint()) == set(
        "steps lr adam_betas adam_eps lr_warmup_steps lr_decay_steps sparsity_warmup_steps "
        "dead_after_tokens normalization_batches seed autocast_bf16 max_grad_norm".split()
    )
    unclipped = train.model_copy(update={"max_grad_norm": None})
    assert "max_grad_norm" not in unclipped.resume_fingerprint()


@pytest.mark.parametrize("init", ["mean", "zero"])
def test_b_dec_starts_at_the_mean_or_at_zero(init):
    x = torch.randn(512, 8) + 3.0
    cfg = TrainConfig(steps=1, lr=1e-12, b_dec_init=init, progress=False)
    spec = RunSpec(name="r", sae={"architecture": "relu", "d_in": 8, "d_sae": 16})
    source = TensorSource(x, batch_size=256, seed=0)
    result = Trainer(cfg, [spec]).fit(source)
    b_dec = result.export("r").b_dec
    assert (b_dec.abs().max() < 1e-6) if init == "zero" else (b_dec.mean() > 2.0)


def test_cli_train_with_the_recipe_records_what_it_set(store, tmp_path):
    out = tmp_path / "jr"
    args = ["train", "--acts", str(store), "--layer", "3", "--arch", "jumprelu", "--d-sae", "32",
            "--batch-size", "256", "--steps", "3", "--lr", "1e-3", "--recipe", "gemma-scope",
            "--no-progress", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "warm-up (10000 steps) is longer than this run (3 steps)" in result.stderr
    cfg = json.loads((out / "cfg.json").read_text())
    recipe = cfg["metadata"]["recipe"]
    assert recipe["name"] == "gemma-scope"
    expected_train = {k: list(v) if isinstance(v, tuple) else v for k, v in GS.train.items()}
    assert recipe["train"] == {k: v for k, v in expected_train.items() if k != "lr"}  # --lr won
    assert recipe["sae"] == GS.sae | GS.sae_by_architecture["jumprelu"]
    config = cfg["saeprobe"]["config"]
    assert (config["bandwidth"], config["aux_coefficient"], config["encoder_init_scale"]) == (
        0.001, 0.0, 1.0,
    )  # fmt: skip
    report = json.loads((out / "train_report.json").read_text())
    assert report["train"]["lr"] == 1e-3 and report["train"]["adam_betas"] == [0.0, 0.999]
    assert report["train"]["lr_warmup"] == "cosine" and report["train"]["b_dec_init"] == "zero"
