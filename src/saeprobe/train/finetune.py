"""Finetuning: a run that starts from a saved SAE starts from exactly that SAE's function.

The settings that define the function (architecture, pre-encoder bias, k) and the width are
inherited from the saved SAE unless the user gives them (`with_inherited`, used by every entry
point). Given settings win, and must then agree with the saved SAE (`load_into`, used by the
trainer): a finetune copies parameters, so a disagreeing setting would silently start the run from
a different encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from saeprobe.errors import ConfigError
from saeprobe.sae.base import SAE
from saeprobe.sae.batchtopk import BatchTopKSAE
from saeprobe.sae.config import SAEConfig
from saeprobe.sae.io import load_sae, trained_config
from saeprobe.sae.jumprelu import JumpReLUSAE
from saeprobe.sae.registry import get_architecture
from saeprobe.sae.topk import TopKSAE

INHERITED = ("architecture", "d_sae", "apply_b_dec_to_input", "k")
# Decoder-row norms closer than this (relative) count as equal; float32 rounding of a saved,
# unit-norm-trained SAE is about 1e-7.
EQUAL_NORMS_RTOL = 1e-4


def inherited_settings(init_dir: str | Path) -> dict[str, Any]:
    """The settings a finetune of the SAE in `init_dir` takes from it (BatchTopK's for a BatchTopK
    saved as a JumpReLU)."""
    trained = trained_config(init_dir)
    return {key: trained[key] for key in INHERITED if key in trained}


def with_inherited(settings: dict[str, Any], init_dir: str | Path | None) -> dict[str, Any]:
    """SAE `settings` as given, completed by those inherited from `init_dir` when finetuning.

    Inherited settings the resulting architecture does not have (k of a TopK finetuned as
    JumpReLU) are dropped, so the trainer's check can name the real disagreement.
    """
    if init_dir is None:
        return dict(settings)
    inherited = inherited_settings(init_dir)
    architecture = get_architecture(settings.get("architecture", inherited["architecture"]))
    fields = architecture.config_class.model_fields
    kept = {k: v for k, v in inherited.items() if k in fields}
    return kept | settings


@torch.no_grad()
def load_into(sae: SAE, init_dir: str | Path, scale: float, run: str) -> None:
    """Overwrite `sae`, run `run`'s freshly built SAE, with the SAE saved in `init_dir`, in the
    units of a stream normalised by `scale` and with unit-norm decoder rows, as the trainer keeps
    them. The function on raw inputs is unchanged."""
    loaded = load_sae(init_dir)
    cfg = sae.cfg
    if (loaded.d_in, loaded.d_sae) != (cfg.d_in, cfg.d_sae):
        raise ConfigError(
            f"run {run!r}: {init_dir} has d_in={loaded.d_in}, d_sae={loaded.d_sae} but the run "
            f"asks for d_in={cfg.d_in}, d_sae={cfg.d_sae}; match them"
        )
    check_compatible(run, cfg, loaded, trained_config(init_dir), init_dir)
    loaded.fold_input_scale(1.0 / scale)  # raw units -> this stream's normalised units
    selects = isinstance(sae, TopKSAE)  # TopK and BatchTopK pick the largest pre-activations
    _unit_decoder_rows(loaded, run, cfg.architecture, init_dir, one_factor=selects)
    if isinstance(sae, BatchTopKSAE) and isinstance(loaded, JumpReLUSAE):
        sae.load_exported(loaded)
        return
    theirs = dict(loaded.named_parameters()) | dict(loaded.named_buffers())
    for name, t in (dict(sae.named_parameters()) | dict(sae.named_buffers())).items():
        t.copy_(theirs[name])


def check_compatible(
    run: str, cfg: SAEConfig, loaded: SAE, trained: dict[str, Any], init_dir: str | Path
) -> None:
    """Refuse a run config under which the loaded SAE would compute another function.

    `trained` is the config the SAE was trained with (BatchTopK for one saved as a JumpReLU).
    """
    arch = cfg.architecture
    # A JumpReLU with one threshold for all latents is what a BatchTopK computes at inference.
    as_batchtopk = arch == "batchtopk" and isinstance(loaded, JumpReLUSAE)
    if arch != loaded.architecture and not as_batchtopk:
        raise ConfigError(
            f"run {run!r}: architecture is {arch!r} but the SAE in {init_dir} was trained as "
            f"{trained['architecture']!r}; finetune it as {trained['architecture']!r}"
        )
    if as_batchtopk and not bool((loaded.threshold == loaded.threshold[0]).all()):
        raise ConfigError(
            f"run {run!r}: the SAE in {init_dir} is a JumpReLU with per-latent thresholds, which a "
            "batchtopk SAE (one global threshold) cannot represent; finetune it as jumprelu"
        )
    if cfg.apply_b_dec_to_input != loaded.cfg.apply_b_dec_to_input:
        _disagree(run, "apply_b_dec_to_input", cfg.apply_b_dec_to_input, loaded.cfg, init_dir)
    if trained["architecture"] == arch and "k" in trained and float(cfg.k) != float(trained["k"]):
        raise ConfigError(
            f"run {run!r}: k is {cfg.k:g} but the SAE in {init_dir} was trained with "
            f"k={trained['k']:g}; drop the setting to inherit it or set it to {trained['k']:g}"
        )


def _disagree(run: str, key: str, ours: Any, theirs: SAEConfig, init_dir: str | Path) -> None:
    value = getattr(theirs, key)
    raise ConfigError(
        f"run {run!r}: {key} is {ours} but the SAE in {init_dir} was trained with {value}; "
        f"drop the setting to inherit it or set it to {value}"
    )


def _unit_decoder_rows(
    loaded: SAE, run: str, arch: str, init_dir: str | Path, one_factor: bool
) -> None:
    """Give the decoder rows unit norm by rescaling latents, keeping the function.

    A per-latent rescale is exact for activations that commute with positive scaling (ReLU,
    JumpReLU, Gated), but changes which latents TopK/BatchTopK select; for those only one factor
    shared by all latents is exact. Saved saeprobe SAEs have equal norms (rows trained at unit
    norm, times the folded normalisation scale), so they always take that path.
    """
    if not one_factor:
        loaded.normalize_decoder()
        return
    norms = loaded.W_dec.norm(dim=1)
    lo, hi = float(norms.min()), float(norms.max())
    if not (lo > 0 and hi - lo <= EQUAL_NORMS_RTOL * hi):
        raise ConfigError(
            f"run {run!r}: the decoder rows of the SAE in {init_dir} have unequal norms "
            f"({lo:.3g} to {hi:.3g}) and the trainer keeps them at unit norm, which would change "
            f"which latents {arch} selects; finetune an SAE with equal decoder-row norms (as "
            "saeprobe saves them) or train from scratch"
        )
    loaded.scale_latents(torch.full_like(norms, float(norms.mean())))
