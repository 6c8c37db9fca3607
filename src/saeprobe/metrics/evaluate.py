"""`saeprobe evaluate`: reconstruction metrics on a store, and the SAE's effect on the model.

Reconstruction metrics are pooled over the whole evaluation range (float64 sums, divided once):
L0 (mean and median), FVU (relative to the mean), NMSE, cosine, explained variance, dead
fraction, and per-latent firing frequencies with the count of high-frequency latents (>= 10 %).

The model-level effect splices the SAE into the model at the store's layer over held-out
windows (documents after those the store used, when the corpus has more): delta LM loss, CE
recovered and KL for causal LMs; for encoders those are null with a reason, and the pooled
embedding's cosine to the clean one is reported instead.

The report says whether the scored tokens were held out (`eval_held_out`): an SAE saved by
`saeprobe train` or `saeprobe sweep` records the store and token range it trained on, and an
overlap with the evaluated range is reported as not held out, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from saeprobe.activations.store import ActivationStore
from saeprobe.activations.windows import collate, iter_windows, pad_id
from saeprobe.data.documents import MixSource, iter_documents
from saeprobe.errors import ConfigError, DataError
from saeprobe.io_utils import atomic_write, atomic_write_json
from saeprobe.lm.models import LoadedModel, load_model
from saeprobe.metrics.lm_effect import lm_effects
from saeprobe.metrics.reconstruction import ReconstructionAccumulator
from saeprobe.sae.base import SAE
from saeprobe.sae.io import load_sae, read_cfg
from saeprobe.train.trainer import resolve_device


class EvaluateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sae: Path
    acts: Path
    layer: int | None = Field(None, description="stored layer; default the SAE's hook_layer")
    eval_tokens: int = Field(65_536, gt=0, description="the store's last N tokens are evaluated")
    eval_range: tuple[int, int] | None = Field(
        None, description="evaluate tokens [start, stop) of the store instead of the last N"
    )
    batch_size: int = Field(4096, gt=0)
    lm: bool = Field(True, description="also splice the SAE into the model")
    model: str | None = Field(None, description="default: the store's model")
    data: str | None = Field(
        None, description="texts for the model-level effect; default the store's"
    )
    field: str | None = None
    lm_windows: int = Field(64, gt=0, description="context windows for the model-level effect")
    lm_batch_size: int = Field(16, gt=0)
    device: str = "auto"
    verify: bool = True


def check_widths(sae: SAE, store: ActivationStore, where: str) -> None:
    if sae.cfg.d_in != store.d_model:
        raise DataError(
            f"the SAE at {where} has d_in={sae.cfg.d_in} but the store {store.path} holds width "
            f"{store.d_model} ({store.manifest.model}); evaluate it on activations of its own model"
        )


@torch.no_grad()
def reconstruction_metrics(
    sae: SAE,
    store: ActivationStore,
    layer: int,
    rows: tuple[int, int],
    batch_size: int = 4096,
    device: str | torch.device = "cpu",
) -> tuple[dict[str, Any], np.ndarray]:
    """Pooled metrics over store tokens [start, stop), and per-latent firing frequencies."""
    sae = sae.to(device).eval()
    acc = ReconstructionAccumulator(sae.cfg.d_sae)
    for start in range(rows[0], rows[1], batch_size):
        index = np.arange(start, min(start + batch_size, rows[1]))
        x = store.activations(index, layer).float().to(device)
        latents = sae.encode(x)
        acc.update(x, sae.decode(latents), latents)
    return acc.result(), acc.frequencies().double().numpy()


def eval_rows(
    store: ActivationStore, eval_tokens: int, eval_range: tuple[int, int] | None = None
) -> tuple[int, int]:
    if eval_range is None:
        return max(0, store.n_tokens - eval_tokens), store.n_tokens
    start, stop = eval_range
    if not 0 <= start < stop <= store.n_tokens:
        raise ConfigError(
            f"--eval-range {start} {stop} is not inside the store's {store.n_tokens} tokens; "
            f"pass 0 <= START < STOP <= {store.n_tokens}"
        )
    return start, stop


def store_fingerprint(store: ActivationStore) -> str:
    """Identifies a store's tokens by its shard checksums (equal for an identical re-harvest)."""
    files = sorted((f, sha) for shard in store.manifest.shards for f, sha in shard.files.items())
    return hashlib.sha256(json.dumps(files).encode()).hexdigest()[:16]


def training_provenance(store: ActivationStore, rows: tuple[int, int]) -> dict[str, Any]:
    """cfg.json metadata saying which tokens an SAE was trained on (read by `tokens_held_out`)."""
    return {
        "activation_store": str(store.path),
        "activation_store_id": store_fingerprint(store),
        "train_rows": list(rows),
    }


def tokens_held_out(
    metadata: dict[str, Any], store: ActivationStore, rows: tuple[int, int]
) -> tuple[bool | None, str]:
    """Whether tokens `rows` of `store` were kept out of the training of the SAE whose cfg.json
    metadata is `metadata`: True, False, or None when the SAE does not say."""
    trained_on, store_id = metadata.get("train_rows"), metadata.get("activation_store_id")
    if trained_on is None or store_id is None:
        return None, "the SAE's cfg.json does not record the store and tokens it was trained on"
    if store_id != store_fingerprint(store):
        return True, f"the SAE was trained on another store ({metadata.get('activation_store')})"
    start, stop = trained_on
    if max(start, rows[0]) < min(stop, rows[1]):
        return False, f"the SAE was trained on tokens [{start}, {stop}) of this store"
    return True, f"the SAE was trained on tokens [{start}, {stop}) of this store"


def _last_doc_id(store: ActivationStore) -> int:
    """The highest document id in the store (each rank's last shard holds its highest)."""
    last_rows, start = [], 0
    for shard in store.manifest.shards:
        last_rows.append(start + shard.n_tokens - 1)
        start += shard.n_tokens
    return int(store.tokens(np.array(last_rows))["doc_id"].max())


def lm_batches(
    lm: LoadedModel,
    store: ActivationStore,
    data: str | None,
    field: str | None,
    n_windows: int,
    batch_size: int,
) -> tuple[list[dict[str, torch.Tensor]], bool]:
    """Windows built exactly as the harvest built them; (batches, whether held out)."""
    m = store.manifest
    if data:
        texts, skip = (lambda: iter_documents(data, field)), -1
    else:
        mix = [MixSource(**{k: v for k, v in x.items() if k != "format"}) for x in m.mix]
        texts, skip = (lambda: iter_documents(m.data, m.field, mix)), _last_doc_id(store)

    def first_windows(docs):
        return list(islice(iter_windows(docs, lm.tokenizer, m.context, chat=m.chat), n_windows))

    # Lazily: only as many documents are read as the windows need.
    windows = first_windows((i, t) for i, t in enumerate(texts()) if i > skip)
    held_out = bool(windows)
    if not held_out:  # the store used the whole corpus: fall back to its first documents
        windows = first_windows(enumerate(texts()))
    batches = []
    for i in range(0, len(windows), batch_size):
        enc = collate(windows[i : i + batch_size], pad_id(lm.tokenizer))
        # Splice only where the harvest stored tokens: never specials or chat-template tokens.
        batches.append(
            {
                "input_ids": enc["input_ids"],
                "attention_mask": enc["attention_mask"],
                "splice_mask": enc["keep"],
            }
        )
    return batches, held_out


def model_effect(
    sae: SAE,
    layer: int,
    lm: LoadedModel,
    batches: list[dict[str, torch.Tensor]],
    held_out: bool,
    outlier_factor: float | None = None,
) -> dict[str, Any]:
    """`lm_effect` of splicing `sae` at `layer`, with its counts renamed lm_* (they count the
    spliced texts, not store tokens). Pass the store's `outlier_factor`: tokens the harvest
    dropped as outliers are not spliced either."""
    return model_effects({"sae": sae}, layer, lm, batches, held_out, outlier_factor)["sae"]


def model_effects(
    saes: dict[str, SAE],
    layer: int,
    lm: LoadedModel,
    batches: list[dict[str, torch.Tensor]],
    held_out: bool,
    outlier_factor: float | None = None,
) -> dict[str, dict[str, Any]]:
    """`model_effect` of several SAEs, sharing the clean and zero-ablated forward passes."""
    device = next(lm.model.parameters()).device
    fns = {}
    for name, sae in saes.items():
        if lm.d_model != sae.cfg.d_in:
            raise DataError(
                f"the SAE {name!r} has d_in={sae.cfg.d_in} but {lm.name} has d_model="
                f"{lm.d_model}; use the model the SAE was trained on"
            )
        fns[name] = _reconstruction(sae.to(device).eval())
    effects = lm_effects(lm, layer, fns, batches, outlier_factor=outlier_factor)
    counts = ("n_tokens", "n_texts", "n_spliced_positions", "n_outlier_positions")
    return {
        name: {
            **{k: v for k, v in effect.items() if k not in counts},
            **{f"lm_{k}": effect[k] for k in counts},
            "lm_texts_held_out": held_out,
        }
        for name, effect in effects.items()
    }


def _reconstruction(sae: SAE):
    def reconstruct(h: torch.Tensor) -> torch.Tensor:
        return sae(h.float()).to(h.dtype)

    return reconstruct


def _layer(cfg: EvaluateConfig, store: ActivationStore) -> int:
    if cfg.layer is not None or len(store.layers) == 1:
        return store.check_layer(cfg.layer)
    hook = _sae_metadata(Path(cfg.sae)).get("hook_layer")
    return store.check_layer(hook)


def save_frequencies(path: Path, freqs: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, freqs, allow_pickle=False)

    atomic_write(path, write)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sae_metadata(path: Path) -> dict[str, Any]:
    if not (path / "cfg.json").is_file():
        return {}  # a Gemma Scope params file
    meta = read_cfg(path).get("metadata", {})
    return meta if isinstance(meta, dict) else {}


def evaluate_sae(
    cfg: EvaluateConfig,
    json_path: str | Path | None = None,
    log: Callable[[str], None] = _stderr,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    store = ActivationStore(cfg.acts, verify=cfg.verify)
    sae = load_sae(cfg.sae)
    check_widths(sae, store, str(cfg.sae))
    layer = _layer(cfg, store)
    device = resolve_device(cfg.device)
    rows = eval_rows(store, cfg.eval_tokens, cfg.eval_range)
    meta = _sae_metadata(Path(cfg.sae))
    is_held_out, why = tokens_held_out(meta, store, rows)
    if is_held_out is False:
        start, stop = meta["train_rows"]
        log(
            f"warning: tokens [{rows[0]}, {rows[1]}) of {cfg.acts} overlap the tokens this SAE "
            f"was trained on ([{start}, {stop})); pass --eval-range outside them, or train "
            "with --holdout-tokens N and evaluate the last N"
        )
    metrics, freqs = reconstruction_metrics(sae, store, layer, rows, cfg.batch_size, device)
    report: dict[str, Any] = {
        "sae_dir": str(cfg.sae),
        "architecture": sae.cfg.architecture,
        "d_sae": sae.cfg.d_sae,
        "acts": str(cfg.acts),
        "layer": layer,
        "eval_rows": list(rows),
        "eval_held_out": is_held_out,
        "eval_held_out_reason": why,
        "train_rows": meta.get("train_rows"),
        **metrics,
    }
    if cfg.lm:
        lm = load_model(cfg.model or store.manifest.model, device=device)
        batches, held_out = lm_batches(
            lm, store, cfg.data, cfg.field, cfg.lm_windows, cfg.lm_batch_size
        )
        outliers = store.manifest.outlier_factor
        report |= model_effect(sae, layer, lm, batches, held_out, outliers)
    else:
        report |= {"lm_loss_reason": "not computed (--no-lm)"}
    report["seconds"] = round(time.perf_counter() - t0, 2)
    if json_path is not None:
        json_path = Path(json_path)
        freq_path = json_path.with_name(json_path.stem + ".frequencies.npy")
        save_frequencies(freq_path, freqs)
        report["frequencies_file"] = str(freq_path)
        atomic_write_json(json_path, report)
    return report
