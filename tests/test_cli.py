"""The command line: one-line errors that name the fix, and a killed run that resumes exactly."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from saeprobe.sae.io import load_sae

FAST = ["--d-sae", "64", "--batch-size", "128", "--no-progress"]


def _cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "saeprobe.cli", *args], capture_output=True, text=True, **kw
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arch", "topk", "--k", "100"], "k=100 exceeds d_sae=64; lower --k or raise --d-sae"),
        (["--arch", "relu", "--l1-coefficient", "-1"], "l1_coefficient"),
        (
            ["--arch", "jumprelu", "--sparsity-coefficient", "-0.5"],
            "sparsity_coefficient must be >= 0",
        ),
        (
            [
                "--arch",
                "jumprelu",
                "--sparsity-penalty",
                "quadratic-frequency",
                "--frequency-scale",
                "0",
            ],
            "frequency_scale must be > 0",
        ),
        (["--arch", "jumprelu", "--sparsity-penalty", "quadratic-frequency"], "--frequency-scale"),
        (["--arch", "mystery"], "unknown SAE architecture 'mystery'"),
        (["--config", "/nonexistent/toy.yaml"], "not found"),
    ],
)
def test_bad_input_gives_one_line_error(args, message):
    r = _cli("toy", *FAST, "--steps", "5", *args)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_malformed_yaml_config(tmp_path):
    bad = tmp_path / "toy.yaml"
    bad.write_text("sae: [unclosed\n")
    r = _cli("toy", *FAST, "--config", str(bad))
    assert r.returncode == 2 and "not valid YAML" in r.stderr and r.stderr.count("\n") == 1


def test_yaml_config_with_unknown_key(tmp_path):
    cfg = tmp_path / "toy.yaml"
    cfg.write_text("architecture: relu\nbogus: 1\n")
    r = _cli("toy", *FAST, "--config", str(cfg))
    assert r.returncode == 2 and "bogus" in r.stderr


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    common = ["toy", "--arch", "jumprelu", *FAST, "--steps", "400", "--seed", "1"]
    ref = _cli(*common, "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr

    ckpt = tmp_path / "ckpt"
    args = [
        *common,
        "--checkpoint-dir",
        str(ckpt),
        "--checkpoint-every",
        "50",
        "--out",
        str(tmp_path / "resumed"),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "saeprobe.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not (ckpt / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "resumed").exists()

    r = _cli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    a, b = load_sae(tmp_path / "ref"), load_sae(tmp_path / "resumed")
    for key, t in a.state_dict().items():
        assert torch.equal(t, b.state_dict()[key]), key
    assert json.loads(r.stdout)["architecture"] == "jumprelu"
