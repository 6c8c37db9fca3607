"""`saeprobe train`: every architecture trains from a harvested store, resumes exactly, and
mismatched inputs are one-line errors."""

import json

import pytest
import torch
from harvest_helpers import cli

from saeprobe.errors import DataError
from saeprobe.sae.io import load_sae, save_sae
from saeprobe.sae.registry import create_sae
from saeprobe.train import trainer as trainer_module
from saeprobe.train.from_store import StoreTrainConfig, train_from_store

FAST = ["--layer", "3", "--d-sae", "128", "--batch-size", "256", "--no-progress"]


def test_cli_trains_topk_from_the_store_and_saves_a_loadable_sae(store, tmp_path):
    out = tmp_path / "sae"
    r = cli(
        "train",
        "--acts",
        str(store),
        "--arch",
        "topk",
        "--k",
        "8",
        "--epochs",
        "2",
        *FAST,
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["steps"] == 2 * (3000 // 256) and report["train_l0"] == pytest.approx(8)
    assert 0 < report["train_fvu"] < 1
    sae = load_sae(out)
    assert (sae.cfg.d_in, sae.cfg.d_sae, sae.cfg.k) == (384, 128, 8)
    cfg = json.loads((out / "cfg.json").read_text())
    assert cfg["metadata"]["hook_layer"] == 3 and cfg["metadata"]["model_name"] == "minilm"
    assert (out / "train_report.json").exists()


def test_cli_clips_gradients_by_default_and_off_turns_it_off(store, tmp_path):
    def trained_with(*args):
        out = tmp_path / f"sae{len(args)}"
        r = cli("train", "--acts", str(store), *FAST, "--steps", "1", *args, "--out", str(out))
        assert r.returncode == 0, r.stderr
        return json.loads((out / "train_report.json").read_text())["train"]["max_grad_norm"]

    assert trained_with() == 0.01
    assert trained_with("--max-grad-norm", "off") is None
    assert trained_with("--max-grad-norm", "0.5") == 0.5
    r = cli("train", "--acts", str(store), *FAST, "--max-grad-norm", "lots", "--out", "x")
    assert r.returncode == 2 and "neither a number nor 'off'" in r.stderr, r.stderr


@pytest.mark.parametrize(
    "arch, extra",
    [("relu", {}), ("gated", {}), ("jumprelu", {}), ("batchtopk", {"k": 4.0})],
)
def test_every_architecture_trains_from_the_store(store, tmp_path, arch, extra):
    cfg = StoreTrainConfig(
        acts=store,
        out=tmp_path / arch,
        layer=3,
        architecture=arch,
        d_sae=64,
        batch_size=256,
        sae=extra,
        train={"steps": 4, "progress": False},
        eval_batches=1,
    )
    report = train_from_store(cfg)
    assert report["steps"] == 4 and load_sae(tmp_path / arch).cfg.d_in == 384


def test_interrupted_training_resumes_bit_exactly(store, tmp_path, monkeypatch):
    def config(name):
        return StoreTrainConfig(
            acts=store,
            out=tmp_path / name,
            layer=3,
            architecture="jumprelu",
            d_sae=64,
            batch_size=256,
            train={"steps": 8, "checkpoint_every": 3, "progress": False},
        )

    train_from_store(config("straight"))
    real_step = trainer_module.Trainer._train_step
    calls = {"n": 0}

    def dying_step(self, run, x, step, total_var):
        calls["n"] += 1
        if step == 5:
            raise KeyboardInterrupt
        return real_step(self, run, x, step, total_var)

    monkeypatch.setattr(trainer_module.Trainer, "_train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train_from_store(config("cut"))
    monkeypatch.setattr(trainer_module.Trainer, "_train_step", real_step)
    train_from_store(config("cut"), resume=True)
    a, b = load_sae(tmp_path / "straight"), load_sae(tmp_path / "cut")
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name


def test_finetuning_an_sae_of_another_width_is_a_one_line_error(store, tmp_path):
    other = create_sae({"architecture": "topk", "d_in": 64, "d_sae": 128, "k": 4})
    save_sae(other, tmp_path / "other")
    r = cli(
        "train",
        "--acts",
        str(store),
        "--init-from",
        str(tmp_path / "other"),
        *FAST,
        "--steps",
        "2",
        "--out",
        str(tmp_path / "ft"),
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "d_in" in r.stderr and "384" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layer", "3", "--acts", "/nonexistent"], "not found; run saeprobe harvest first"),
        ([], "choose one with --layer"),
        (["--layer", "3", "--batch-size", "256", "--resume"], "no checkpoint"),
        (["--layer", "3"], "fewer than batch_size=4096; lower --batch-size"),
    ],
)
def test_bad_train_input(store, tmp_path, args, message):
    if "--acts" not in args:
        args = ["--acts", str(store), *args]
    r = cli("train", *args, "--out", str(tmp_path / "x"), "--steps", "1", "--no-progress")
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_missing_store_raises_data_error(tmp_path):
    with pytest.raises(DataError):
        train_from_store(StoreTrainConfig(acts=tmp_path / "none", out=tmp_path / "o"))
