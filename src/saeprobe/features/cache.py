"""Cache extracted features on disk, keyed by everything they depend on.

The key hashes the model's weights, the layer, the context length, the poolings (by name, which
is distinct per method, anchor and offset), every prompt's text, every file each SAE is loaded
from (weights and cfg.json: k, the pre-encoder bias or the architecture change the features with
the same weights), and `FEATURE_FORMAT`, so any change recomputes and nothing stale is ever reused. Files are
safetensors, written atomically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from saeprobe.activations.harvest import weights_sha256
from saeprobe.features.extract import Features
from saeprobe.features.pooling import Pooling
from saeprobe.io_utils import atomic_write
from saeprobe.lm.models import LoadedModel
from saeprobe.sae.io import sae_fingerprint

# Bumped whenever the same inputs would give different features. 2: the user's text is located
# after the template's prefix (short prompts such as "user" used to match inside it), and fixed
# positions are no longer clipped to the batch width (they could read padding).
FEATURE_FORMAT = 2


def feature_key(
    lm: LoadedModel,
    layer: int,
    context: int,
    poolings: Sequence[Pooling],
    texts: Sequence[str],
    sae_dirs: dict[str, Path],
    autocast: bool = False,
) -> str:
    text_hash = hashlib.sha256()
    for text in texts:
        text_hash.update(hashlib.sha256(text.encode()).digest())
    parts = {
        "format": FEATURE_FORMAT,
        "model": weights_sha256(lm.model),
        "layer": layer,
        "context": context,
        "poolings": [p.name for p in poolings],
        "texts": text_hash.hexdigest(),
        # The template decides which tokens a prompt has; bf16 autocast nudges every value.
        "chat_template": getattr(lm.tokenizer, "chat_template", None),
        "autocast": autocast,
        "saes": {name: sae_fingerprint(d) for name, d in sorted(sae_dirs.items())},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def save_features(path: Path, feats: Features) -> None:
    tensors = {f"dense/{p}": torch.from_numpy(x) for p, x in feats.dense.items()}
    for kind, table in (("latents", feats.latents), ("recon", feats.reconstruction)):
        for sae, by_pool in table.items():
            for p, x in by_pool.items():
                tensors[f"{kind}/{sae}/{p}"] = torch.from_numpy(np.ascontiguousarray(x))
    tensors["n_user_tokens"] = torch.from_numpy(np.asarray(feats.n_user_tokens, dtype=np.int64))
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))


def load_features(path: Path) -> Features:
    feats = Features()
    for key, tensor in load_file(str(path)).items():
        kind, *rest = key.split("/")
        array = tensor.numpy()
        if kind == "dense":
            feats.dense[rest[0]] = array
        elif kind == "latents":
            feats.latents.setdefault(rest[0], {})[rest[1]] = array
        elif kind == "recon":
            feats.reconstruction.setdefault(rest[0], {})[rest[1]] = array
        else:
            feats.n_user_tokens = array
    return feats
