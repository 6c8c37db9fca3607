"""Where cached work lives: $SAEPROBE_CACHE (default ~/.cache/saeprobe).

stores/     activation stores harvested for sweeps
features/   pooled probe features
models/     dequantised GGUF models ($SAEPROBE_MODEL_CACHE overrides this one folder, so
            that a run with a scratch cache does not dequantise the model again)
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    default = Path.home() / ".cache" / "saeprobe"
    return Path(os.environ.get("SAEPROBE_CACHE", default)).expanduser()


def model_cache() -> Path:
    explicit = os.environ.get("SAEPROBE_MODEL_CACHE")
    return Path(explicit).expanduser() if explicit else cache_root() / "models"
