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
from saeprobe.errors import FormatError
from saeprobe.features.extract import Features
from saeprobe.features.pooling import Pooling
from saeprobe.features.tokens import SparseLatents, TokenCache
from saeprobe.io_utils import atomic_write
from saeprobe.lm.models import LoadedModel
from saeprobe.sae.io import sae_fingerprint

# Bumped whenever the same inputs would give different features. 2: the user's text is located
# after the template's prefix (short prompts such as "user" used to match inside it), and fixed
# positions are no longer clipped to the batch width (they could read padding).
FEATURE_FORMAT = 2
# The per-token file (`tokens_path`) sits beside the pooled one under the same key; its own
# format number is in its name.
TOKEN_FORMAT = 1


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


def tokens_path(features_path: Path) -> Path:
    """Where the per-token activations of a pooled features file live (same key)."""
    return features_path.with_name(f"{features_path.stem}.tokens-v{TOKEN_FORMAT}.safetensors")


def save_tokens(path: Path, tokens: TokenCache) -> None:
    tensors = {
        "residual": torch.from_numpy(np.ascontiguousarray(tokens.residual)),
        "offsets": torch.from_numpy(tokens.offsets.astype(np.int64)),
        "positions": torch.from_numpy(tokens.positions.astype(np.int32)),
        "is_user": torch.from_numpy(tokens.is_user.astype(bool)),
    }
    for name, z in tokens.latents.items():
        tensors[f"latents/{name}/indptr"] = torch.from_numpy(z.indptr)
        tensors[f"latents/{name}/indices"] = torch.from_numpy(z.indices)
        tensors[f"latents/{name}/values"] = torch.from_numpy(z.values)
        tensors[f"latents/{name}/d_sae"] = torch.tensor([z.d_sae], dtype=torch.int64)
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))


def load_tokens(path: Path) -> TokenCache:
    """The per-token cache at `path`; FormatError naming the fix when it is not there."""
    if not Path(path).exists():
        raise FormatError(
            f"no per-token activations at {path}: these features were extracted without them; "
            "re-extract with per-token activations (enable per_token in the probe config)"
        )
    raw = {k: t.numpy() for k, t in load_file(str(path)).items()}
    parts: dict[str, dict[str, np.ndarray]] = {}
    for key, array in raw.items():
        if key.startswith("latents/"):
            _, name, what = key.split("/")
            parts.setdefault(name, {})[what] = array
    latents = {
        name: SparseLatents(p["indptr"], p["indices"], p["values"], int(p["d_sae"][0]))
        for name, p in parts.items()
    }
    return TokenCache(raw["residual"], raw["offsets"], raw["positions"], raw["is_user"], latents)
