"""Training reads the store memory-mapped and never holds it whole.

The store trained on is the session store's shards hard-linked 400 times under new names: about
1.8 GB of activations that cost no disk. A child process trains on it and reports how much
private (anonymous) memory it ever held beyond what it had before training. File-backed pages
of the memory-mapped shards are page cache the kernel reclaims under a RAM cap, so they are
reported but not counted; a trainer that loaded the store would need the whole 1.8 GB privately.

The child also runs under a RAM cap of half the store (RLIMIT_DATA, which counts private memory
and not file-backed mappings), and checks that the cap binds: after training, allocating the
store's size fails.
"""

import json
import os
import subprocess
import sys

from saeprobe.activations.manifest import MANIFEST, load_manifest
from saeprobe.activations.shards import layer_file, tokens_file

COPIES = 400

CHILD = r"""
import json, resource, sys
from pathlib import Path
import torch
from saeprobe.activations.store import ActivationStore
from saeprobe.train import RunSpec, TrainConfig, Trainer

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")

class Sampled:
    def __init__(self, source):
        self.source, self.batch_size, self.peak = source, source.batch_size, 0.0
    d_in = property(lambda self: self.source.d_in)
    normalization_scale = property(lambda self: self.source.normalization_scale)
    def batches(self, start=0):
        for b in self.source.batches(start):
            self.peak = max(self.peak, status("RssAnon"))
            yield b

store = ActivationStore(sys.argv[1], verify=False)
src = Sampled(store.source(2048, layer=3, seed=0, block_tokens=1 << 16))
spec = RunSpec(name="topk", sae={"architecture": "topk", "d_in": 384, "d_sae": 768, "k": 8})
cfg = TrainConfig(steps=30, lr=1e-3, progress=False, device="cpu")
store_mb = store.n_tokens * 384 * 4 / 2**20
cap_mb = store_mb / 2
limit = int((status("VmData") + cap_mb) * 2**20)
resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))
base = status("RssAnon")
Trainer(cfg, [spec]).fit(src)
try:  # the cap binds: the store cannot be held privately
    torch.empty(int(store_mb * 2**20), dtype=torch.uint8).fill_(1)
    cap_binds = False
except (RuntimeError, MemoryError):
    cap_binds = True
print(json.dumps({"base_anon_mb": base, "peak_anon_mb": max(src.peak, status("RssAnon")),
                  "peak_rss_mb": status("VmHWM"), "store_mb": store_mb, "cap_mb": cap_mb,
                  "cap_binds": cap_binds}))
"""


def _big_store(small, out):
    """`small`'s shards hard-linked COPIES times under new stems, with a manifest for them."""
    manifest = load_manifest(small)
    (out / "shards").mkdir(parents=True)
    shards = []
    for i in range(COPIES):
        for rec in manifest.shards:
            stem = f"{rec.stem}-c{i:03d}"
            names = {
                layer_file(rec.stem, layer): layer_file(stem, layer) for layer in manifest.layers
            }
            names[tokens_file(rec.stem)] = tokens_file(stem)
            for old, new in names.items():
                os.link(small / old, out / new)
            files = {names[k]: v for k, v in rec.files.items()}
            shards.append(rec.model_copy(update={"stem": stem, "files": files}))
    big = manifest.model_copy(update={"shards": shards, "n_tokens": manifest.n_tokens * COPIES})
    (out / MANIFEST).write_text(big.model_dump_json())
    return out


def test_training_memory_does_not_grow_with_the_store(store, tmp_path):
    big = _big_store(store, tmp_path / "big")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(big)],
        capture_output=True,
        text=True,
        env=os.environ | {"OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    print(got)  # the peak RSS report (pytest -s)
    assert got["store_mb"] > 1500
    assert got["cap_binds"], "the RAM cap did not bind: the test would not catch a loaded store"
    # 30 steps x 2048 rows read from 1.8 GB of shards; private memory grew by far less than 10 %.
    assert got["peak_anon_mb"] - got["base_anon_mb"] < 0.1 * got["store_mb"]
