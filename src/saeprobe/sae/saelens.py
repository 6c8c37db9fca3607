"""The SAELens `cfg.json`: what saeprobe writes, and how it reads the layouts SAELens writes.

Tested against the real package (tests/sae/test_saelens_interop.py); the fields are listed in
docs/formats.md. Reading covers SAELens 6 directories, the older (pre-6) layout and SAELens
training checkpoints:

- `architecture` standard / gated / jumprelu / topk, and batchtopk (a training checkpoint; SAELens
  itself saves a finished BatchTopK as jumprelu). Missing means standard.
- The older layout names TopK `"architecture": "standard"` with `activation_fn_str` (or
  `activation_fn`) `"topk"` and `activation_fn_kwargs.k`: read as TopK, as SAELens does.
- `rescale_acts_by_decoder_norm` (TopK): selection and decoding use the decoder-row norms; folded
  into the weights at load, which SAELens's own export does too.
- `normalize_activations`: `none` (or the older `false`) needs nothing. `expected_average_only_in`
  (or `true`) means the weights read x * s; s is taken from the `activation_scaler.json` a SAELens
  checkpoint keeps beside cfg.json and folded in. Per-token schemes are refused.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from saeprobe.errors import FormatError

CFG_FILE = "cfg.json"
SCALER_FILE = "activation_scaler.json"
# SAELens architecture names -> ours.
FROM_SAELENS = {
    "standard": "relu",
    "gated": "gated",
    "jumprelu": "jumprelu",
    "topk": "topk",
    "batchtopk": "batchtopk",
}
_RELU_NAMES = (None, "relu")  # activation_fn values that mean a plain ReLU


@dataclass
class Folding:
    """What must be folded into the loaded weights so that the SAE reads raw activations."""

    input_scale: float | None = None  # SAELens's scaling_factor s: the weights read x * s
    decoder_norm: bool = False  # rescale_acts_by_decoder_norm


def saelens_cfg(sae, metadata: dict[str, Any]) -> dict[str, Any]:
    """The SAELens part of cfg.json for `sae` (already exported for inference, raw units)."""
    cfg = sae.cfg
    out: dict[str, Any] = {
        "architecture": sae.saelens_architecture,
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": cfg.apply_b_dec_to_input,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": metadata,
    }
    if sae.saelens_architecture == "topk":
        out["k"] = cfg.k
        out["rescale_acts_by_decoder_norm"] = False
    return out


def _activation_fn(cfg: dict[str, Any]) -> Any:
    return cfg.get("activation_fn", cfg.get("activation_fn_str"))


def config_from_saelens(cfg: dict[str, Any], where: Path) -> dict[str, Any]:
    """Our SAE config for a cfg.json written by SAELens (or by saeprobe: its own config wins)."""
    ours = cfg.get("saeprobe", {}).get("config")
    if isinstance(ours, dict):
        return ours
    name = str(cfg.get("architecture", "standard"))
    activation = _activation_fn(cfg)
    if name == "standard" and activation == "topk":
        name = "topk"  # the older layout (SAELens < 6) spelled TopK this way
    arch = FROM_SAELENS.get(name)
    if arch is None:
        raise FormatError(
            f"{where}: SAELens architecture {cfg.get('architecture')!r} is not supported; "
            f"supported: {', '.join(FROM_SAELENS)}"
        )
    if arch not in ("topk", "batchtopk") and activation not in _RELU_NAMES:
        raise FormatError(
            f"{where / CFG_FILE}: activation_fn {activation!r} is not supported for a {name} SAE "
            "(only relu, and topk); convert the SAE with SAELens first"
        )
    out: dict[str, Any] = {"architecture": arch}
    for key in ("d_in", "d_sae"):
        if key not in cfg:
            raise FormatError(f"{where / CFG_FILE} lacks {key!r}; it is not a valid SAE config")
        out[key] = cfg[key]
    out["apply_b_dec_to_input"] = bool(cfg.get("apply_b_dec_to_input", True))
    if arch in ("topk", "batchtopk"):
        k = cfg.get("k", (cfg.get("activation_fn_kwargs") or {}).get("k"))
        if k is None:
            raise FormatError(f"{where / CFG_FILE} is a {name} SAE without 'k'; add it to cfg.json")
        out["k"] = int(k) if arch == "topk" else float(k)
    return out


def folding(cfg: dict[str, Any], where: Path) -> Folding:
    """What `load_sae` must fold into the weights of the SAE described by `cfg` (in `where`)."""
    norm = cfg.get("normalize_activations")
    if norm is True:  # the older layout's boolean
        norm = "expected_average_only_in"
    out = Folding(decoder_norm=bool(cfg.get("rescale_acts_by_decoder_norm", False)))
    if norm in (None, False, "none"):
        return out
    if norm != "expected_average_only_in":
        raise FormatError(
            f"{where / CFG_FILE}: normalize_activations={norm!r} normalises each token at run "
            "time, which saeprobe does not support; use an SAE trained with 'none' or "
            "'expected_average_only_in'"
        )
    out.input_scale = _scaling_factor(where)
    return out


def _scaling_factor(where: Path) -> float:
    path = where / SCALER_FILE
    fix = (
        "fold it in with SAELens (sae.fold_activation_norm_scaling_factor(s)) and save the SAE "
        "with normalize_activations 'none'"
    )
    if not path.is_file():
        raise FormatError(
            f"{where / CFG_FILE}: normalize_activations='expected_average_only_in' but the scale "
            f"is not stored with the SAE (no {SCALER_FILE}); {fix}"
        )
    try:
        scaler = json.loads(path.read_text(encoding="utf-8"))
        s = scaler["scaling_factor"]
        whitened = bool(scaler.get("has_whitening", False))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FormatError(f"{path} is unreadable ({err!r}); {fix}") from None
    if whitened:
        raise FormatError(f"{path}: whitened activations are not supported; {fix}")
    if not isinstance(s, int | float) or not math.isfinite(s) or s <= 0:
        raise FormatError(f"{path}: scaling_factor {s!r} is not a positive number; {fix}")
    return float(s)


def rename_tensors(tensors: dict[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """SAELens tensor names -> ours, for the few that differ."""
    tensors = dict(tensors)
    if arch == "jumprelu" and "threshold" not in tensors and "log_threshold" in tensors:
        tensors["threshold"] = tensors.pop("log_threshold").exp()  # older SAELens trained log θ
    if arch == "batchtopk" and "topk_threshold" in tensors:
        tensors["threshold"] = tensors.pop("topk_threshold")
    return tensors
