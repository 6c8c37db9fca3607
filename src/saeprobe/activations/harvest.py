"""`saeprobe harvest`: run a model over a corpus and store the residual stream at some layers.

One forward pass (cut after the deepest layer asked for) serves every layer. Under `torchrun`
rank r takes documents r, r + W, r + 2W, ..., writes its own shards and state file, and rank 0
writes the single manifest once every rank is done. The manifest is written last, so a store
without one is visibly unfinished.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm.auto import tqdm

from saeprobe import __version__
from saeprobe.activations import distributed
from saeprobe.activations.manifest import (
    MANIFEST,
    Manifest,
    NormSums,
    RankState,
    load_model_file,
    scale_from,
    state_path,
)
from saeprobe.activations.prefetch import prefetch
from saeprobe.activations.shards import DTYPES, TOKEN_DTYPE
from saeprobe.activations.windows import Window, collate, iter_windows, pad_id
from saeprobe.activations.writer import Rows, ShardWriter, token_rows
from saeprobe.data.default_corpus import NAME as DEFAULT_CORPUS
from saeprobe.data.documents import (
    MixSource,
    data_format,
    iter_documents,
    iter_mix,
    iter_source,
    mix_format,
)
from saeprobe.errors import DataError
from saeprobe.io_utils import atomic_write_json
from saeprobe.lm.chat import has_chat_template
from saeprobe.lm.hooks import capture_layers
from saeprobe.lm.models import DEFAULT_MODEL, LoadedModel, load_model
from saeprobe.lm.precision import autocast, resolve_autocast
from saeprobe.train.trainer import resolve_device

# SmolLM2 puts norms 50-140x the median on a few early tokens ("\n" or " and" right after a
# window's start): a handful per 10k tokens that would dominate E||x||^2 and the SAE's loss.
DEFAULT_OUTLIER_FACTOR = 10.0


class HarvestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = DEFAULT_MODEL
    layers: list[int] = Field(min_length=1)
    data: str = DEFAULT_CORPUS
    field: str | None = None
    mix: list[MixSource] = Field(
        default_factory=list,
        description="documents put first (so --max-tokens never cuts them), e.g. probe prompts",
    )
    out: Path
    max_tokens: int | None = Field(None, gt=0, description="stop after this many tokens")
    context: int = Field(128, ge=2, description="tokens per window, special tokens included")
    batch_size: int = Field(32, gt=0, description="windows per forward pass")
    shard_tokens: int = Field(65_536, gt=0, description="tokens per shard file")
    chat: bool = Field(False, description="format text documents as a chat user turn")
    dtype: str = "float32"
    autocast: bool | None = Field(
        None,
        description="run the model under bf16 autocast (stored activations keep dtype); "
        "None: only where bf16 is fast (saeprobe.lm.precision)",
    )
    device: str = "auto"
    outlier_factor: float | None = Field(
        DEFAULT_OUTLIER_FACTOR,
        gt=1,
        description="drop tokens whose norm exceeds this multiple of the batch median (massive "
        "activations such as secondary attention sinks); None keeps every token",
    )
    progress: bool = True

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, v: str) -> str:
        if v not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)} (got {v!r})")
        return v

    @field_validator("layers")
    @classmethod
    def _layers(cls, v: list[int]) -> list[int]:
        return sorted(set(v))

    def fingerprint(self) -> dict[str, Any]:
        """What must not change between a harvest and its resumption."""
        skip = {"out", "device", "progress"}
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in skip}


def weights_sha256(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy())
    return h.hexdigest()


def harvest(
    cfg: HarvestConfig, resume: bool = False, lm: LoadedModel | None = None
) -> Manifest | None:
    """Harvest on this rank; return the manifest on rank 0 (None on the other ranks).

    `lm` may be passed when the caller already loaded `cfg.model` (in `cfg.dtype`).
    """
    rank, world = distributed.setup()
    try:
        return _harvest(cfg, resume, rank, world, lm)
    finally:
        distributed.teardown()


def _harvest(cfg, resume: bool, rank: int, world: int, lm: LoadedModel | None):
    if lm is None:
        device = distributed.device_for(resolve_device(cfg.device), rank)
        lm = load_model(cfg.model, device=device, dtype=DTYPES[cfg.dtype])
    elif lm.name != cfg.model:  # the manifest would name the wrong model
        raise ValueError(f"harvest got a loaded {lm.name!r} for model {cfg.model!r}")
    lm.check_layers(cfg.layers)
    _check_data(cfg)
    device = next(lm.model.parameters()).device
    cfg = cfg.model_copy(update={"autocast": resolve_autocast(cfg.autocast, device)})
    fingerprint = cfg.fingerprint() | {"world_size": world, "weights": weights_sha256(lm.model)}
    state = _start_state(cfg, resume, rank, fingerprint)
    distributed.barrier()  # every rank has checked the directory before any rank writes to it

    if not state.done:
        quota = distributed.quota(cfg.max_tokens, rank, world)
        writer = ShardWriter(cfg.out, rank, cfg.layers, cfg.shard_tokens, state, quota)
        try:
            last_batch = _run(cfg, lm, writer, state, quota, rank, world)
        except BaseException:
            writer.close()  # let queued shards land, so a resume redoes as little as possible
            raise
        writer.finish(next_batch=last_batch)
    distributed.barrier()
    if rank != 0:
        return None
    return _write_manifest(cfg, lm, fingerprint, world)


def _check_data(cfg: HarvestConfig) -> None:
    """Fail on an unreadable source before anything is written."""
    for source in cfg.mix:
        if next(iter_mix(source), None) is None:
            what = source.data or f"split {source.split} of {source.dataset}"
            raise DataError(f"mix source {what} holds no documents; remove it or fill it")
    next(iter_source(cfg.data, cfg.field))


def _start_state(cfg: HarvestConfig, resume: bool, rank: int, fingerprint: dict) -> RankState:
    out, path = cfg.out, state_path(cfg.out, rank)
    if (out / MANIFEST).exists() and not resume:
        raise DataError(f"{out} already holds a finished store; choose another --out")
    if resume:
        for stale in out.glob("**/.*.tmp"):  # temporary files of a killed run
            stale.unlink(missing_ok=True)
    if resume and path.exists():
        state = load_model_file(path, RankState, "harvest into a fresh --out")
        if state.fingerprint != fingerprint:
            diff = sorted(k for k in fingerprint if state.fingerprint.get(k) != fingerprint[k])
            raise DataError(
                f"--resume with different settings ({', '.join(diff)}) than the interrupted "
                f"harvest in {out}; rerun with the original settings or use a fresh --out"
            )
        return state
    if out.exists() and any(out.iterdir()) and not resume:
        raise DataError(f"{out} is not empty; pass --resume to continue a harvest there")
    return RankState(fingerprint=fingerprint)


def _batches(cfg: HarvestConfig, lm: LoadedModel, rank: int, world: int) -> Iterator[list[Window]]:
    texts = iter_documents(cfg.data, cfg.field, cfg.mix)
    docs = ((i, text) for i, text in enumerate(texts) if i % world == rank)
    windows = iter_windows(docs, lm.tokenizer, cfg.context, chat=cfg.chat)
    while batch := list(islice(windows, cfg.batch_size)):
        yield batch


def _run(cfg, lm, writer: ShardWriter, state: RankState, quota, rank: int, world: int) -> int:
    """Forward every batch from the state's cursor on; return the index after the last one."""
    pad = pad_id(lm.tokenizer)
    bar = tqdm(
        total=quota,
        initial=writer.total,
        disable=not cfg.progress,
        desc=f"harvest rank {rank}" if world > 1 else "harvest",
        unit="tok",
        unit_scale=True,
    )
    last = state.next_batch
    try:
        # Batches before the cursor are re-tokenised (cheap) but never run through the model.
        for b, windows in enumerate(prefetch(_batches(cfg, lm, rank, world))):
            if b < state.next_batch:
                continue
            rows, n_outliers = _forward(cfg, lm, windows, pad, b)
            if b == state.next_batch and state.skip:
                _, rows = rows.split(state.skip)
            before = writer.total
            writer.add(rows, n_outliers)
            bar.update(writer.total - before)
            last = b + 1
            if writer.full():
                break
    finally:
        bar.close()
    return last


def _forward(cfg: HarvestConfig, lm: LoadedModel, windows: list[Window], pad: int, b: int):
    enc = collate(windows, pad)
    device = next(lm.model.parameters()).device
    inputs = {k: enc[k].to(device) for k in ("input_ids", "attention_mask")}
    # Under autocast the residual stream itself stays float32 (bf16 block outputs are added to
    # it), and the stored rows are cast to the store's dtype below.
    with autocast(cfg.autocast, device):
        captured = capture_layers(lm.model, lm.blocks, cfg.layers, **inputs)
    keep = enc["keep"]
    n_outliers = 0
    if cfg.outlier_factor is not None:
        keep, n_outliers = _drop_outliers(captured, keep, cfg.outlier_factor)
    flat = keep.flatten()
    storage = DTYPES[cfg.dtype]
    acts = {
        layer: x.flatten(0, 1)[flat.to(x.device)].to("cpu", storage)
        for layer, x in captured.items()
    }
    per_window = {
        "doc_id": torch.tensor([w.doc_id for w in windows]),
        "window": torch.tensor([w.window for w in windows], dtype=torch.int32),
    }
    tokens = token_rows(
        token_id=enc["input_ids"].flatten()[flat],
        position=enc["positions"].flatten()[flat],
        **{k: v.unsqueeze(1).expand_as(keep).flatten()[flat] for k, v in per_window.items()},
    )
    return Rows(b, 0, acts, tokens), n_outliers


def _drop_outliers(captured: dict[int, torch.Tensor], keep: torch.Tensor, factor: float):
    """Drop kept tokens whose norm at any harvested layer exceeds `factor` x that layer's median."""
    outlier = torch.zeros_like(keep)
    for x in captured.values():
        norms = x.float().norm(dim=-1).cpu()
        median = norms[keep].median() if keep.any() else norms.new_tensor(0.0)
        outlier |= keep & (norms > factor * median)
    return keep & ~outlier, int(outlier.sum())


def _write_manifest(cfg: HarvestConfig, lm: LoadedModel, fingerprint: dict, world: int) -> Manifest:
    states = [
        load_model_file(state_path(cfg.out, r), RankState, "re-run the harvest with --resume")
        for r in range(world)
    ]
    unfinished = [r for r, s in enumerate(states) if not s.done]
    if unfinished:
        raise DataError(f"ranks {unfinished} did not finish; re-run the harvest with --resume")
    norms = NormSums()
    for s in states:
        norms = norms.add(s.norms)
    scale, mean_norm = scale_from(norms)
    formats = [
        data_format(cfg.data, cfg.field, cfg.chat),
        *(mix_format(m, cfg.chat) for m in cfg.mix),
    ]
    manifest = Manifest(
        model=cfg.model,
        model_class=type(lm.model).__name__,
        model_weights_sha256=fingerprint["weights"],
        is_causal_lm=lm.is_causal_lm,
        tokenizer=f"{type(lm.tokenizer).__name__}:{getattr(lm.tokenizer, 'name_or_path', '')}",
        layers=cfg.layers,
        d_model=lm.d_model,
        dtype=cfg.dtype,
        n_tokens=sum(s.n_tokens for s in states),
        data=cfg.data,
        field=cfg.field,
        mix=[m.model_dump() | {"format": mix_format(m, cfg.chat)} for m in cfg.mix],
        context=cfg.context,
        chat=cfg.chat,
        data_format=formats[0],
        chat_template=(
            None
            if set(formats) == {"plain"}
            else "model"
            if has_chat_template(lm.tokenizer)
            else "fallback"
        ),
        autocast=cfg.autocast,
        batch_size=cfg.batch_size,
        shard_tokens=cfg.shard_tokens,
        max_tokens=cfg.max_tokens,
        outlier_factor=cfg.outlier_factor,
        n_outliers_excluded=sum(s.n_outliers for s in states),
        world_size=world,
        token_metadata={
            "files": "shards/<stem>.tokens.npy, one row per stored token, same order",
            "fields": ", ".join(TOKEN_DTYPE.names),
        },
        normalization_scale=scale,
        mean_norm=mean_norm,
        shards=[shard for s in states for shard in s.shards],
        saeprobe_version=__version__,
    )
    atomic_write_json(cfg.out / MANIFEST, manifest.model_dump(mode="json"))
    return manifest
