"""Training checkpoints: one safetensors file holding every run's SAE, Adam state and dead-latent
counters, with the step, normalisation scale and configs as JSON metadata.

The file is written to a temporary name and renamed, so the previous checkpoint survives a crash
at any point. No pickle is involved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from saeprobe import __version__
from saeprobe.errors import FormatError
from saeprobe.io_utils import atomic_write

CHECKPOINT_FILE = "checkpoint.safetensors"
_META_KEY = "saeprobe_checkpoint"


@dataclass
class RunState:
    sae: dict[str, torch.Tensor]
    optim: dict[str, dict[str, torch.Tensor]]  # param name -> Adam state
    rows_since_fired: torch.Tensor


@dataclass
class Checkpoint:
    step: int
    meta: dict[str, Any]  # scale, configs, rows seen, ...
    runs: list[RunState]


def checkpoint_path(directory: str | Path) -> Path:
    return Path(directory) / CHECKPOINT_FILE


def save_checkpoint(directory: str | Path, ckpt: Checkpoint) -> Path:
    tensors: dict[str, torch.Tensor] = {}
    for i, run in enumerate(ckpt.runs):
        for name, t in run.sae.items():
            tensors[f"run{i}.sae.{name}"] = t
        for pname, state in run.optim.items():
            for key, t in state.items():
                tensors[f"run{i}.optim.{pname}.{key}"] = t
        tensors[f"run{i}.rows_since_fired"] = run.rows_since_fired
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {"version": __version__, "step": ckpt.step, "n_runs": len(ckpt.runs), **ckpt.meta}
    path = checkpoint_path(directory)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={_META_KEY: json.dumps(meta)}))
    return path


def load_checkpoint(directory: str | Path) -> Checkpoint:
    path = checkpoint_path(directory)
    if not path.exists():
        raise FormatError(f"no checkpoint at {path}; drop --resume to start a fresh run")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {})[_META_KEY])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        raise FormatError(
            f"checkpoint {path} is corrupt ({err}); delete it to restart from scratch"
        ) from None
    runs = []
    for i in range(meta["n_runs"]):
        prefix = f"run{i}."
        sae: dict[str, torch.Tensor] = {}
        optim: dict[str, dict[str, torch.Tensor]] = {}
        for key, t in tensors.items():
            if key.startswith(prefix + "sae."):
                sae[key[len(prefix) + 4 :]] = t
            elif key.startswith(prefix + "optim."):
                pname, state_key = key[len(prefix) + 6 :].rsplit(".", 1)
                optim.setdefault(pname, {})[state_key] = t
        runs.append(RunState(sae, optim, tensors[prefix + "rows_since_fired"]))
    return Checkpoint(step=int(meta["step"]), meta=meta, runs=runs)
