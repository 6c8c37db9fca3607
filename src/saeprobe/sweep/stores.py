"""Stores a sweep needs: reuse an identical cached harvest, finish an interrupted one, or harvest.

The cache lives in $SAEPROBE_CACHE/stores (default ~/.cache/saeprobe/stores). A cached store's name
carries a hash of its harvest settings and of the data file's size and modification time, so
changed settings or a changed corpus never silently reuse stale activations.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from saeprobe.activations.harvest import HarvestConfig, harvest
from saeprobe.activations.manifest import MANIFEST
from saeprobe.activations.store import ActivationStore
from saeprobe.cache import cache_root
from saeprobe.data.documents import MixSource
from saeprobe.errors import ConfigError
from saeprobe.sweep.config import StoreSpec


def file_stamp(source: str) -> list:
    path = Path(source)
    if path.is_file():
        stat = path.stat()
        return [str(path.resolve()), stat.st_size, int(stat.st_mtime)]
    return [source]


def _mix_stamp(source: MixSource) -> list:
    if source.dataset is None:
        return file_stamp(source.data)
    from saeprobe.data.prompts.cached import dataset_key
    from saeprobe.data.prompts.config import load_dataset_config

    config = None if source.dataset == "default" else source.dataset
    return ["dataset", dataset_key(load_dataset_config(config))]


def store_key(spec: StoreSpec) -> str:
    settings = spec.model_dump(mode="json", exclude={"path"})
    stamps = [file_stamp(spec.data), *(_mix_stamp(m) for m in spec.mix)]
    blob = json.dumps([settings, stamps], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def harvest_config(spec: StoreSpec, out: Path, progress: bool) -> HarvestConfig:
    return HarvestConfig(
        model=spec.model,
        layers=[spec.layer],
        data=spec.data,
        field=spec.field,
        mix=spec.mix,
        out=out,
        max_tokens=spec.max_tokens,
        context=spec.context,
        chat=spec.chat,
        dtype=spec.dtype,
        autocast=spec.autocast,
        outlier_factor=spec.outlier_factor,
        progress=progress,
    )


def ensure_store(name: str, spec: StoreSpec, progress: bool = True) -> ActivationStore:
    out = spec.path or cache_root() / "stores" / f"{name}-{store_key(spec)}"
    cfg = harvest_config(spec, out, progress)
    if (out / MANIFEST).exists():
        store = ActivationStore(out)
        m = store.manifest
        want = {
            "model": spec.model,
            "data": spec.data,
            "context": spec.context,
            "chat": spec.chat,
            "dtype": spec.dtype,
            "max_tokens": spec.max_tokens,
            "outlier_factor": spec.outlier_factor,
        }
        if spec.autocast is not None:  # None: whatever this machine chose is fine
            want["autocast"] = spec.autocast
        have = {k: getattr(m, k) for k in want}
        if have != want or spec.layer not in m.layers:
            diff = sorted(k for k in want if have[k] != want[k]) or ["layer"]
            raise ConfigError(
                f"store {name!r} at {out} was harvested with other settings ({', '.join(diff)}); "
                "remove `path` to use the cache, or point it at a fresh directory"
            )
        return store
    harvest(cfg, resume=out.exists())
    return ActivationStore(out)
