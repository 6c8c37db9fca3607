"""A probing dataset built once into the cache, for stages that need its prompts (e.g. a chat SAE
finetune that mixes in the train split's prompts).

The cache key covers the whole config and the size and modification time of every file it
reads, so an edited config, source or template rebuilds it. The build is deterministic, so the
splits are the ones `saeprobe probe` builds from the same config.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from saeprobe.cache import cache_root
from saeprobe.data.prompts.build import DATASET_FILE, build_dataset, load_dataset_dir
from saeprobe.data.prompts.config import DatasetConfig, load_dataset_config
from saeprobe.data.prompts.examples import SPLITS, Example

DEFAULT = "default"  # the offline built-in dataset, as a config name


def _stamp(path: Path) -> list:
    if not path.is_file():
        return [str(path)]
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, int(stat.st_mtime)]


def dataset_key(cfg: DatasetConfig) -> str:
    files = [p for s in cfg.sources for p in s.paths] + [Path(t) for t in cfg.templates.values()]
    blob = json.dumps([cfg.model_dump(mode="json"), [_stamp(p) for p in files]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_dataset(config: str | Path) -> list[Example]:
    """The rows of the dataset `config` builds (a YAML path, or "default"), built on first use."""
    cfg = load_dataset_config(None if str(config) == DEFAULT else config)
    out = cache_root() / "datasets" / dataset_key(cfg)
    if not (out / DATASET_FILE).is_file():
        build_dataset(cfg, out)
    return load_dataset_dir(out)


def split_texts(config: str | Path, split: str) -> list[str]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} (got {split!r})")
    return [row.text for row in cached_dataset(config) if row.split == split]
