"""Run under torchrun by test_distributed.py: TopK, JumpReLU and BatchTopK SAEs trained
data-parallel on a store.

    python -m torch.distributed.run --standalone --nproc-per-node 2 ddp_worker.py STORE OUT MODE

MODE is `full`, `kill` (the data source dies before step KILL_AT, after the checkpoint at step
4, on every rank) or `resume`. Rank 0 writes OUT/weights.safetensors.
"""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from saeprobe.activations.store import ActivationStore
from saeprobe.train import RunSpec, TrainConfig, Trainer, distributed

KILL_AT = 5
BATCH = 64


def config(out: Path) -> tuple[TrainConfig, list[RunSpec]]:
    cfg = TrainConfig(
        steps=8,
        lr=3e-3,
        lr_warmup_steps=2,
        dead_after_tokens=128,  # latents die within the run, so AuxK and its fire counts matter
        device="cpu",
        progress=False,
        log_every=4,
        checkpoint_dir=out / "checkpoint",
        checkpoint_every=2,
    )
    sae = {"d_in": 384, "d_sae": 128}
    runs = [
        RunSpec(name="topk", sae={"architecture": "topk", "k": 4, **sae}),
        RunSpec(name="jumprelu", sae={"architecture": "jumprelu", "bandwidth": 0.05, **sae}),
        RunSpec(name="batchtopk", sae={"architecture": "batchtopk", "k": 4, **sae}),
    ]
    return cfg, runs


def source(store: Path):
    return ActivationStore(store, verify=False).source(BATCH, layer=3, seed=0)


class Killed(Exception):
    pass


class KilledAt:
    def __init__(self, source, stop):
        self.source, self.stop = source, stop
        self.batch_size = source.batch_size

    @property
    def d_in(self):
        return self.source.d_in

    @property
    def normalization_scale(self):
        return self.source.normalization_scale

    def batches(self, start=0):
        for step, b in enumerate(self.source.batches(start), start):
            if step == self.stop:
                raise Killed
            yield b


def train(store: Path, out: Path, mode: str):
    cfg, runs = config(out)
    src = source(store)
    if mode == "kill":
        src = KilledAt(src, KILL_AT)
    return Trainer(cfg, runs).fit(src, resume=mode == "resume")


def weights(result) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{k}": v.detach().cpu().contiguous()
        for name, sae in result.saes.items()
        for k, v in sae.state_dict().items()
    }


if __name__ == "__main__":
    store, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    try:
        result = train(store, out, mode)
        if distributed.is_main():
            save_file(weights(result), str(out / "weights.safetensors"))
    except Killed:
        sys.exit(3)
    finally:
        distributed.ranks.teardown()
