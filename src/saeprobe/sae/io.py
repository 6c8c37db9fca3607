"""Save and load SAEs.

Writes the SAELens directory layout: `cfg.json` + `sae_weights.safetensors` with keys W_enc
[d_in, d_sae], W_dec [d_sae, d_in], b_dec, and b_enc / threshold / b_gate, r_mag, b_mag as the
architecture needs. Reads that layout (ours or SAELens's; the cfg.json fields are in
`saeprobe.sae.saelens` and docs/formats.md) and Gemma Scope's `params.npz` /
`params.safetensors`. Saved SAEs take raw activations: any normalisation scale is folded in first.
Never uses pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from saeprobe import __version__
from saeprobe.errors import FormatError
from saeprobe.io_utils import (
    FILE_MODE,
    atomic_write_json,
    recover_dir,
    replace_dir,
    sha256_file,
    staging_dir,
)
from saeprobe.sae.base import SAE
from saeprobe.sae.registry import get_architecture, make_config
from saeprobe.sae.saelens import (
    CFG_FILE,
    SCALER_FILE,
    config_from_saelens,
    folding,
    rename_tensors,
    saelens_cfg,
)

WEIGHTS_FILE = "sae_weights.safetensors"
GEMMA_SCOPE_FILES = ("params.safetensors", "params.npz")
# Key under cfg.json's "saeprobe" holding the config an SAE saved as another architecture had.
TRAINED_AS = "trained_as"


def save_sae(sae: SAE, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write `sae` (already in raw-activation units) to directory `path`, atomically.

    The directory is built beside `path` and swapped in (`io_utils.replace_dir`), so `path`
    holds the previous complete SAE or the new complete SAE, never a mixture; after a crash in
    the middle of the swap, `load_sae` finds the complete copy and puts it back.
    """
    path = Path(path)
    trained = sae
    sae = sae.export_for_inference()
    tensors = {
        name: t.detach().float().contiguous().cpu()
        for name, t in (dict(sae.named_parameters()) | dict(sae.named_buffers())).items()
    }
    cfg_json = saelens_cfg(sae, dict(metadata or {}))
    cfg_json["saeprobe"] = {"version": __version__, "config": sae.cfg.model_dump()}
    if trained is not sae:
        # Saved as another architecture (BatchTopK as JumpReLU): keep what it was trained as, so
        # a finetune can resume it as such. Loading for inference ignores this key.
        cfg_json["saeprobe"][TRAINED_AS] = trained.cfg.model_dump()

    if path.exists() and not path.is_dir():
        raise FormatError(f"{path} exists and is not a directory; choose another --out")
    staged = staging_dir(path)
    try:
        save_file(tensors, staged / WEIGHTS_FILE)
        os.chmod(staged / WEIGHTS_FILE, FILE_MODE)
        with open(staged / WEIGHTS_FILE, "rb") as fh:
            os.fsync(fh.fileno())  # cfg.json (written last, fsynced) marks the copy complete
        atomic_write_json(staged / CFG_FILE, cfg_json)
        replace_dir(staged, path)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return path


def _complete(directory: Path) -> bool:
    return (directory / CFG_FILE).is_file() and (directory / WEIGHTS_FILE).is_file()


def sae_saved(path: str | os.PathLike) -> bool:
    """Whether a complete SAE is saved at `path` (after recovering an interrupted save)."""
    path = Path(path)
    recover_dir(path, _complete)
    return _complete(path)


def sae_fingerprint(path: str | os.PathLike) -> str:
    """A hash of every file `load_sae(path)` reads, so equal fingerprints load equal SAEs."""
    kind, where = _locate(Path(path))
    files = [where] if kind == "gemma_scope" else [where / CFG_FILE, where / WEIGHTS_FILE]
    if kind == "saelens" and (where / SCALER_FILE).is_file():
        files.append(where / SCALER_FILE)
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}:{sha256_file(f) if f.is_file() else 'missing'};".encode())
    return h.hexdigest()


def load_sae(path: str | os.PathLike, device: str | torch.device = "cpu") -> SAE:
    """Load an SAE from a SAELens-layout directory or a Gemma Scope params file/directory."""
    kind, where = _locate(Path(path))
    sae = _load_saelens_dir(where) if kind == "saelens" else _load_gemma_scope(where)
    return sae.to(device)


def trained_config(path: str | os.PathLike) -> dict[str, Any]:
    """The config the SAE at `path` was trained with: what it loads as, except that a BatchTopK
    saved as a JumpReLU reports its BatchTopK config.

    Reads no weights (they can be gigabytes): cfg.json, or a Gemma Scope file's W_enc header.
    """
    kind, where = _locate(Path(path))
    if kind == "gemma_scope":
        return _gemma_scope_config(*_gemma_scope_shape(where))
    cfg = read_cfg(where)
    recorded = cfg.get("saeprobe", {}).get(TRAINED_AS)
    return recorded if isinstance(recorded, dict) else config_from_saelens(cfg, where)


def _locate(path: Path) -> tuple[str, Path]:
    """("saelens", directory) or ("gemma_scope", params file) for a path given by the user."""
    if not path.exists() and not recover_dir(path, _complete):
        raise FormatError(f"SAE path {path} does not exist; pass the directory written by --out")
    if path.is_file():
        if path.name.startswith("params."):
            return "gemma_scope", path
        raise FormatError(
            f"{path} is a file; pass the SAE directory (with {CFG_FILE}) or a Gemma Scope params file"
        )
    if (path / CFG_FILE).exists():
        return "saelens", path
    for name in GEMMA_SCOPE_FILES:
        if (path / name).exists():
            return "gemma_scope", path / name
    raise FormatError(
        f"{path} has no {CFG_FILE} and no Gemma Scope params file; pass a directory saved by "
        "saeprobe/SAELens or one holding params.npz / params.safetensors"
    )


def read_cfg(path: Path) -> dict[str, Any]:
    try:
        cfg = json.loads((path / CFG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(
            f"{path / CFG_FILE} is unreadable or not JSON ({err}); re-save the SAE"
        ) from None
    if not isinstance(cfg, dict):
        raise FormatError(f"{path / CFG_FILE} must hold a JSON object; re-save the SAE")
    return cfg


def _load_saelens_dir(path: Path) -> SAE:
    cfg = read_cfg(path)
    config = make_config(config_from_saelens(cfg, path))
    fold = folding(cfg, path)
    weights_path = path / WEIGHTS_FILE
    if not weights_path.exists():
        raise FormatError(f"{weights_path} is missing; the SAE directory is incomplete, re-save it")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise FormatError(
            f"{weights_path} is corrupt or truncated ({err}); re-save the SAE"
        ) from None
    sae = _build(config, rename_tensors(tensors, config.architecture), weights_path)
    if fold.decoder_norm:
        sae.normalize_decoder()  # what SAELens's rescale_acts_by_decoder_norm computes
    if fold.input_scale is not None:
        sae.fold_input_scale(1 / fold.input_scale)  # the weights read x * s
    return sae


def _load_gemma_scope(file: Path) -> SAE:
    try:
        if file.suffix == ".npz":
            with np.load(file, allow_pickle=False) as npz:
                tensors = {k: torch.from_numpy(np.asarray(npz[k])) for k in npz.files}
        else:
            tensors = load_file(str(file))
    except Exception as err:  # numpy raises several types for a bad archive
        raise FormatError(f"{file} is corrupt or not a Gemma Scope params file ({err})") from None
    missing = {"W_enc", "W_dec", "b_enc", "b_dec", "threshold"} - set(tensors)
    if missing:
        raise FormatError(f"{file} lacks {sorted(missing)}; it is not a Gemma Scope JumpReLU SAE")
    config = make_config(_gemma_scope_config(*tensors["W_enc"].shape))
    return _build(config, tensors, file)


def _gemma_scope_config(d_in: int, d_sae: int) -> dict[str, Any]:
    # Gemma Scope applies no pre-encoder bias: z = x W_enc + b_enc.
    return {"architecture": "jumprelu", "d_in": d_in, "d_sae": d_sae, "apply_b_dec_to_input": False}


def _gemma_scope_shape(file: Path) -> tuple[int, int]:
    """W_enc's shape (d_in, d_sae), read from the file's header only."""
    try:
        if file.suffix == ".npz":
            with zipfile.ZipFile(file) as archive, archive.open("W_enc.npy") as fh:
                version = np.lib.format.read_magic(fh)
                # Float arrays never need format 3.0 (utf-8 field names of structured dtypes).
                read_header = {
                    (1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0,
                }[version]
                shape = read_header(fh)[0]
        else:
            with safe_open(str(file), "pt") as fh:
                shape = fh.get_slice("W_enc").get_shape()
        d_in, d_sae = shape
    except Exception as err:  # zipfile, numpy and safetensors raise many types for a bad file
        raise FormatError(
            f"{file} is corrupt or not a Gemma Scope params file (no 2-D W_enc: {err!r})"
        ) from None
    return int(d_in), int(d_sae)


def _build(config, tensors: dict[str, torch.Tensor], where: Path) -> SAE:
    sae = get_architecture(config.architecture)(config)
    expected = dict(sae.named_parameters()) | dict(sae.named_buffers())
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise FormatError(f"{where} lacks tensors {missing} needed by a {config.architecture} SAE")
    with torch.no_grad():
        for name, target in expected.items():
            t = tensors[name]
            if tuple(t.shape) != tuple(target.shape):
                raise FormatError(
                    f"{where}: {name} has shape {tuple(t.shape)} but the config implies "
                    f"{tuple(target.shape)}; the weights and cfg.json do not match"
                )
            target.copy_(t.to(target.dtype))
        if config.architecture == "jumprelu":
            # SAELens and Gemma Scope gate ReLU(z) by z > theta, so theta < 0 acts as theta = 0,
            # which is what our z * (z > theta) needs to match.
            sae.threshold.clamp_(min=0)
    return sae
