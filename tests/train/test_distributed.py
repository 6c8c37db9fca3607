"""torchrun data-parallel training with 2 CPU processes (gloo): real torchrun subprocesses."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from saeprobe.train.from_store import StoreTrainConfig, train_from_store
from tests.train import ddp_worker

WORKER = Path(ddp_worker.__file__)
ROOT = Path(__file__).resolve().parents[2]


def torchrun(*args, cwd=None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, env=env)


def _check(done):
    assert done.returncode == 0, done.stderr[-3000:]


CLI_ARGS = {"architecture": "topk", "d_sae": 128, "batch_size": 64, "layer": 3}
CLI_TRAIN = {"steps": 6, "lr": 3e-3, "device": "cpu", "progress": False}


def test_torchrun_cli_train_matches_single_process(store, tmp_path):
    """`torchrun -m saeprobe.cli train` on 2 ranks (32 rows each) against one process reading
    the same 64-row global batches: the same SAE within float tolerance; only rank 0 writes."""
    args = [
        "-m", "saeprobe.cli", "train", "--acts", store, "--layer", 3, "--out", tmp_path / "ddp",
        "--arch", "topk", "--d-sae", 128, "--k", 4, "--batch-size", 64, "--steps", 6,
        "--lr", 3e-3, "--device", "cpu", "--no-progress", "--no-verify",
    ]  # fmt: skip
    done = torchrun(*args)
    _check(done)
    assert done.stdout.count('"architecture"') == 1  # one report: rank 0's
    single = StoreTrainConfig(
        acts=store, out=tmp_path / "single", sae={"k": 4}, train=CLI_TRAIN, verify=False,
        **CLI_ARGS,
    )  # fmt: skip
    train_from_store(single)
    a = load_file(tmp_path / "ddp" / "sae_weights.safetensors")
    b = load_file(tmp_path / "single" / "sae_weights.safetensors")
    for key in b:
        assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-6), key


def test_torchrun_kill_and_resume_ends_with_the_same_weights(store, tmp_path):
    """Killed after its step-4 checkpoint and resumed under torchrun, a 2-rank run of TopK,
    JumpReLU and BatchTopK SAEs (AuxK on dying latents; BatchTopK selecting over the whole
    batch) ends where one uninterrupted process does."""
    out = tmp_path / "ddp"
    out.mkdir()
    killed = torchrun(WORKER, store, out, "kill")
    assert killed.returncode != 0
    assert (out / "checkpoint" / "checkpoint.safetensors").exists()
    assert not (out / "weights.safetensors").exists()
    _check(torchrun(WORKER, store, out, "resume"))
    resumed = load_file(out / "weights.safetensors")

    reference = ddp_worker.weights(ddp_worker.train(store, tmp_path / "single", "full"))
    assert resumed.keys() == reference.keys()
    for key, ref in reference.items():
        assert torch.allclose(resumed[key], ref, rtol=1e-4, atol=1e-6), key


@pytest.mark.parametrize("world", [2, 3])
def test_rank_slices_partition_the_global_batch(store, world):
    from saeprobe.activations.store import ActivationStore
    from saeprobe.train.distributed import RankSlice

    src = ActivationStore(store, verify=False).source(96, layer=3, seed=0)
    parts = [next(RankSlice(src, r, world, 96).batches(5)) for r in range(world)]
    assert torch.equal(torch.cat(parts), next(src.batches(5)))
