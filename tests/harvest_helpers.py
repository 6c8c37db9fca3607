"""Small-harvest helpers shared by the activation tests."""

import subprocess
import sys

from saeprobe.activations.harvest import HarvestConfig, harvest

# autocast off: readback tests compare against an fp32 forward, and "auto" turns bf16 on where
# the CPU has bf16 units.
SMALL = {"context": 32, "batch_size": 8, "shard_tokens": 512, "progress": False, "autocast": False}


def small_harvest(minilm, corpus, out, resume=False, **kw):
    base = {"model": minilm.name, "layers": [3], "data": str(corpus), "out": out}
    cfg = HarvestConfig(**{**base, **SMALL, **kw})
    return harvest(cfg, resume=resume, lm=minilm)


def cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "saeprobe.cli", *args], capture_output=True, text=True, **kw
    )
