"""`saeprobe latents`: one streaming pass over a store that keeps, for every latent, the examples
later stages need (see `records.py` for what is kept and how it is laid out).

The unit of an example is a context window (one harvested sequence; its rows are consecutive in
the store). Per window and latent the pass takes the largest activation and the token where it
occurs, then keeps, per part (explain / held-out):

- the `n_top` windows with the largest activation: a top-n merge along the window axis;
- a uniform sample of the windows where the latent fires (a bottom-k sketch over seeded random
  keys, which is an exact uniform sample without replacement and merges block by block); the
  quantile bands are cut from this sample at the end;
- one shared uniform sample of windows, with which latents fired anywhere in each, for the
  non-activating examples.

The span shown for an example (the activations of its tokens) is cut from the block being
processed when the window enters a heap, so no second pass is needed. Memory is bounded by
d_sae x (n_top + sample) x span, independent of the store's size: the pass never holds more than
one block of [block tokens, d_sae] latents, and a block holds at most 64 windows (its span
tensors are [windows, d_sae, span]).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor
from tqdm.auto import tqdm

from saeprobe.activations.store import ActivationStore
from saeprobe.errors import DataError
from saeprobe.interp.records import (
    FIELDS,
    KINDS,
    PARTS,
    example_file,
    save_array,
    write_meta,
)
from saeprobe.interp.tokens import load_tokenizer, token_strings
from saeprobe.io_utils import sha256_file
from saeprobe.sae.base import SAE
from saeprobe.sae.io import WEIGHTS_FILE, load_sae, read_cfg
from saeprobe.train.trainer import resolve_device

# Log-spaced histogram bins of firing activations: 10 per decade over 1e-4 .. 1e4.
HIST_EDGES = np.logspace(-4, 4, 81)
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


class LatentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sae: Path
    acts: Path
    out: Path
    layer: int | None = Field(None, description="stored layer [the SAE's hook_layer]")
    n_top: int = Field(20, ge=1, description="top-activating windows kept per part")
    n_quantiles: int = Field(5, ge=1, description="activation bands of the quantile examples")
    n_per_quantile: int = Field(2, ge=1, description="examples per band and part")
    n_random: int = Field(20, ge=0, description="non-activating windows kept per part")
    sample_size: int | None = Field(
        None, ge=1, description="firing windows sampled per part [4 x quantile examples]"
    )
    before: int = Field(16, ge=0, description="tokens shown before the peak token")
    after: int = Field(4, ge=0, description="tokens shown after it")
    heldout_fraction: float = Field(0.5, gt=0, lt=1, description="windows held out for scoring")
    max_tokens: int | None = Field(None, gt=0, description="read only the store's first N tokens")
    batch_tokens: int = Field(2048, gt=0, description="tokens encoded per block")
    seed: int = 0
    device: str = "auto"
    verify: bool = True
    progress: bool = True

    @property
    def span(self) -> int:
        return self.before + self.after + 1

    @property
    def n_quantile_examples(self) -> int:
        return self.n_quantiles * self.n_per_quantile

    @property
    def n_sample(self) -> int:
        return self.sample_size or 4 * self.n_quantile_examples


# --- checks ----------------------------------------------------------------------------------


def check_sae_matches_store(sae: SAE, sae_dir: Path, store: ActivationStore, layer: int) -> None:
    """The SAE must read this store's model and layer: one-line errors otherwise."""
    if sae.cfg.d_in != store.d_model:
        raise DataError(
            f"the SAE at {sae_dir} has d_in={sae.cfg.d_in} but the store {store.path} holds width "
            f"{store.d_model} ({store.manifest.model}); use a store of the SAE's own model"
        )
    meta = read_cfg(sae_dir).get("metadata", {}) if (sae_dir / "cfg.json").is_file() else {}
    hook = meta.get("hook_layer")
    if isinstance(hook, int) and hook != layer:
        raise DataError(
            f"the SAE at {sae_dir} was trained on layer {hook} but layer {layer} of {store.path} "
            f"was chosen; pass --layer {hook} or a store of that layer"
        )
    digest = meta.get("model_weights_sha256")
    if digest and digest != store.manifest.model_weights_sha256:
        raise DataError(
            f"the SAE at {sae_dir} was trained on other model weights than the store "
            f"{store.path} holds ({store.manifest.model}); use a store of the SAE's own model"
        )
    name = meta.get("model_name")
    if not digest and name and name != store.manifest.model:
        raise DataError(
            f"the SAE at {sae_dir} was trained on {name} but the store {store.path} holds "
            f"{store.manifest.model}; use a store of the SAE's own model"
        )


def _layer(cfg: LatentsConfig, store: ActivationStore) -> int:
    if cfg.layer is not None or len(store.layers) == 1:
        return store.check_layer(cfg.layer)
    hook = read_cfg(cfg.sae).get("metadata", {}).get("hook_layer")
    return store.check_layer(hook)


# --- windows ---------------------------------------------------------------------------------


def window_starts(store: ActivationStore, stop: int, chunk: int = 1 << 18) -> np.ndarray:
    """First row of every context window among rows [0, stop): where (doc_id, window) changes."""
    starts, prev = [], None
    for lo in range(0, stop, chunk):
        meta = store.tokens(slice(lo, min(lo + chunk, stop)))
        key = meta["doc_id"].astype(np.int64) * (1 << 20) + meta["window"].astype(np.int64)
        change = np.flatnonzero(np.diff(key)) + 1
        if prev is None or key[0] != prev:
            starts.append(np.array([lo], dtype=np.int64))
        starts.append(lo + change.astype(np.int64))
        prev = key[-1]
    return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of each element."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9) & _MASK64
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB) & _MASK64
        return x ^ (x >> np.uint64(31))


def heldout_windows(doc_id: np.ndarray, window: np.ndarray, fraction: float, seed: int):
    """Whether each window is held out for scoring: a seeded hash of (doc_id, window), so the
    same windows are held out for every SAE read on the same store."""
    with np.errstate(over="ignore"):
        h = _mix(doc_id.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15))
        h = _mix(h ^ window.astype(np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53) < fraction


# --- the streaming state ---------------------------------------------------------------------


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN, _M1, _M2 = (
    _signed(c) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
)


def _shr(x: Tensor, k: int) -> Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def hash_keys(seed: int, units: Tensor, width: int) -> Tensor:
    """Uniform [0, 1) keys [len(units), width], a pure function of (seed, window, column): the
    samples do not depend on how the pass is cut into blocks. splitmix64 in wrapping int64."""
    x = units.to(torch.long).unsqueeze(1) * width + torch.arange(width, device=units.device)
    x = x + (seed + 1) * _GOLDEN
    x = (x ^ _shr(x, 30)) * _M1
    x = (x ^ _shr(x, 27)) * _M2
    x = x ^ _shr(x, 31)
    return _shr(x, 11).to(torch.float64).mul_(2.0**-53).to(torch.float32)


class _Slots:
    """n slots per latent: a key to rank by and the example fields, all [n, d_sae, ...]."""

    def __init__(self, n: int, d: int, span: int, largest: bool, device):
        fill = -torch.inf if largest else torch.inf
        self.n, self.largest = n, largest
        self.key = torch.full((n, d), fill, device=device)
        self.fields = {
            "value": torch.zeros((n, d), device=device),
            "row": torch.full((n, d), -1, dtype=torch.long, device=device),
            "unit": torch.full((n, d), -1, dtype=torch.long, device=device),
            "length": torch.zeros((n, d), dtype=torch.int16, device=device),
            "peak": torch.zeros((n, d), dtype=torch.int16, device=device),
            "acts": torch.zeros((n, d, span), dtype=torch.float16, device=device),
        }

    def merge(self, key: Tensor, cand: dict[str, Tensor]) -> None:
        keys = torch.cat([self.key, key])
        self.key, idx = keys.topk(self.n, dim=0, largest=self.largest)
        for name, old in self.fields.items():
            both = torch.cat([old, cand[name]])
            index = idx if both.ndim == 2 else idx.unsqueeze(-1).expand(-1, -1, both.shape[-1])
            self.fields[name] = torch.take_along_dim(both, index, dim=0)

    def filled(self) -> Tensor:
        return torch.isfinite(self.key)


class _Negatives:
    """A uniform sample of windows (bottom-k random keys) and which latents fired in each."""

    def __init__(self, n: int, d: int, device):
        self.n = n
        self.key = torch.full((n,), torch.inf, device=device)
        self.unit = torch.full((n,), -1, dtype=torch.long, device=device)
        self.fired = torch.ones((n, d), dtype=torch.bool, device=device)

    def merge(self, key: Tensor, unit: Tensor, fired: Tensor) -> None:
        keys = torch.cat([self.key, key])
        take = min(self.n, keys.numel())
        self.key, idx = keys.topk(take, largest=False)
        self.unit = torch.cat([self.unit, unit])[idx]
        self.fired = torch.cat([self.fired, fired])[idx]


class _Collector:
    def __init__(self, cfg: LatentsConfig, d: int, device):
        self.cfg, self.d, self.device = cfg, d, device
        span = cfg.span
        self.top = {p: _Slots(cfg.n_top, d, span, True, device) for p in PARTS}
        self.sample = {p: _Slots(cfg.n_sample, d, span, False, device) for p in PARTS}
        self.negatives = {p: _Negatives(max(4 * cfg.n_random, 64), d, device) for p in PARTS}
        self.token_counts = torch.zeros(d, dtype=torch.long, device=device)
        self.window_counts = torch.zeros(d, dtype=torch.long, device=device)
        self.max_act = torch.zeros(d, device=device)
        self.hist = torch.zeros(d * (len(HIST_EDGES) - 1), dtype=torch.long, device=device)
        self.log_edges = torch.tensor(np.log10(HIST_EDGES[1:-1]), device=device)
        self.n_tokens = self.n_windows = 0

    def add_block(self, z: Tensor, unit_lengths: Tensor, units: Tensor, part: Tensor, row0: int):
        """z [B, d] latents of rows row0..row0+B, made of windows `units` (global ids) of
        `unit_lengths` rows each; `part[u]` = 1 for a held-out window."""
        cfg, d = self.cfg, self.d
        n_units, n_rows = len(units), z.shape[0]
        fired_tok = z > 0
        self.token_counts += fired_tok.sum(0)
        self.n_tokens += n_rows
        self.n_windows += n_units
        self._histogram(z, fired_tok)

        seg = torch.repeat_interleave(torch.arange(n_units, device=z.device), unit_lengths)
        seg_d = seg.unsqueeze(1).expand(-1, d)
        unit_max = torch.zeros((n_units, d), device=z.device).scatter_reduce(
            0, seg_d, z, "amax", include_self=True
        )
        rows = torch.arange(n_rows, device=z.device).unsqueeze(1).expand(-1, d)
        at_max = fired_tok & (z == unit_max[seg])
        peak_row = torch.full((n_units, d), n_rows, dtype=torch.long, device=z.device)
        peak_row = peak_row.scatter_reduce(
            0, seg_d, torch.where(at_max, rows, n_rows), "amin", include_self=True
        )
        fired = unit_max > 0
        self.window_counts += fired.sum(0)
        self.max_act = torch.maximum(self.max_act, unit_max.max(0).values)

        cand = self._spans(z, unit_max, peak_row, unit_lengths, units, row0)
        keys = hash_keys(cfg.seed, units, d + 1)  # column d keys the window itself
        for p_index, p in enumerate(PARTS):
            sel = torch.nonzero(part == p_index).flatten()
            if not sel.numel():
                continue
            sub = {k: v[sel] for k, v in cand.items()}
            f = fired[sel]
            self.top[p].merge(torch.where(f, unit_max[sel], -torch.inf), sub)
            self.sample[p].merge(torch.where(f, keys[sel, :d], torch.inf), sub)
            self.negatives[p].merge(keys[sel, d], units[sel], f)

    def _spans(self, z, unit_max, peak_row, unit_lengths, units, row0) -> dict[str, Tensor]:
        """Per (window, latent): the span around the peak token and its activations."""
        cfg, d = self.cfg, self.d
        n_units, n_rows = unit_max.shape[0], z.shape[0]
        span = cfg.span
        ends = torch.cumsum(unit_lengths, 0)
        starts = ends - unit_lengths
        lo = starts.unsqueeze(1)
        hi = torch.clamp(ends - span, min=starts).unsqueeze(1)
        peak = torch.clamp(peak_row, max=n_rows - 1)
        first = torch.minimum(torch.maximum(peak - cfg.before, lo), hi)
        length = torch.minimum(ends.unsqueeze(1) - first, torch.tensor(span, device=z.device))
        offsets = torch.arange(span, device=z.device)
        index = torch.clamp(first.unsqueeze(-1) + offsets, max=n_rows - 1)  # [U, d, S]
        acts = z.gather(0, index.permute(0, 2, 1).reshape(n_units * span, d))
        acts = acts.reshape(n_units, span, d).permute(0, 2, 1)
        acts = torch.where(offsets < length.unsqueeze(-1), acts, 0.0)
        return {
            "value": unit_max,
            "row": first + row0,
            "unit": units.unsqueeze(1).expand(-1, d),
            "length": length.to(torch.int16),
            "peak": (peak - first).to(torch.int16),
            "acts": acts.to(torch.float16),
        }

    def _histogram(self, z: Tensor, fired: Tensor) -> None:
        rows, cols = torch.nonzero(fired, as_tuple=True)
        if not rows.numel():
            return
        bins = torch.bucketize(torch.log10(z[rows, cols]), self.log_edges)
        n_bins = len(HIST_EDGES) - 1
        self.hist += torch.bincount(cols * n_bins + bins, minlength=self.hist.numel())


# --- the pass --------------------------------------------------------------------------------


# Windows per block, at most: the per-block span tensors are [windows, d_sae, span].
MAX_BLOCK_WINDOWS = 64


def _blocks(starts: np.ndarray, stop: int, batch_tokens: int):
    """(first window, last window + 1) groups of whole windows of about batch_tokens rows."""
    ends = np.append(starts[1:], stop)
    first = 0
    while first < len(starts):
        last = int(np.searchsorted(ends, starts[first] + batch_tokens, side="right"))
        last = max(min(last, first + MAX_BLOCK_WINDOWS), first + 1)
        yield first, last
        first = last


@torch.no_grad()
def collect_latents(cfg: LatentsConfig, log=print) -> dict[str, Any]:
    """Stream the store through the SAE and write the records directory `cfg.out`."""
    t0 = time.perf_counter()
    store = ActivationStore(cfg.acts, verify=cfg.verify)
    layer = _layer(cfg, store)
    sae = load_sae(cfg.sae)
    check_sae_matches_store(sae, Path(cfg.sae), store, layer)
    device = resolve_device(cfg.device)
    sae = sae.to(device).eval()
    stop = min(store.n_tokens, cfg.max_tokens or store.n_tokens)
    starts = window_starts(store, stop)
    ends = np.append(starts[1:], stop)
    meta_at_start = store.tokens(starts)
    heldout = heldout_windows(
        meta_at_start["doc_id"], meta_at_start["window"], cfg.heldout_fraction, cfg.seed
    )
    collector = _Collector(cfg, sae.cfg.d_sae, device)
    blocks = list(_blocks(starts, stop, cfg.batch_tokens))
    for first, last in tqdm(blocks, disable=not cfg.progress, desc="latents", unit="block"):
        r0, r1 = int(starts[first]), int(ends[last - 1])
        x = store.activations(slice(r0, r1), layer).float().to(device)
        z = sae.encode(x).float().clamp_min(0)
        lengths = torch.from_numpy(ends[first:last] - starts[first:last]).to(device)
        units = torch.arange(first, last, device=device)
        part = torch.from_numpy(heldout[first:last].astype(np.int64)).to(device)
        collector.add_block(z, lengths, units, part, r0)
    if collector.n_tokens == 0 or not bool((collector.token_counts > 0).any()):
        raise DataError(
            f"no latent of the SAE at {cfg.sae} fires on the {collector.n_tokens} tokens read "
            f"from {store.path}: it has no live latents here; check the SAE (its thresholds, "
            "its normalisation) and that the store is of its model and layer"
        )
    summary = _write(cfg, store, layer, sae, collector, starts, ends, t0)
    log(
        f"{summary['counts']['live']} live / {summary['counts']['dead']} dead latents over "
        f"{collector.n_tokens} tokens -> {cfg.out}"
    )
    return summary


# --- finishing -------------------------------------------------------------------------------


def _as_numpy(slots: _Slots) -> dict[str, np.ndarray]:
    out = {k: v.cpu().numpy() for k, v in slots.fields.items()}
    out["filled"] = slots.filled().cpu().numpy()
    return out


def _empty(d: int, n: int, span: int) -> dict[str, np.ndarray]:
    return {
        "row": np.full((d, n), -1, dtype=FIELDS["row"]),
        "length": np.zeros((d, n), dtype=FIELDS["length"]),
        "peak": np.zeros((d, n), dtype=FIELDS["peak"]),
        "value": np.zeros((d, n), dtype=FIELDS["value"]),
        "band": np.full((d, n), -1, dtype=FIELDS["band"]),
        "acts": np.zeros((d, n, span), dtype=FIELDS["acts"]),
    }


def _top_arrays(top: dict[str, np.ndarray], span: int) -> dict[str, np.ndarray]:
    n, d = top["value"].shape
    out = _empty(d, n, span)
    filled = top["filled"].T
    for name in ("row", "length", "peak", "value"):
        out[name][filled] = top[name].T[filled]
    out["acts"][filled] = top["acts"].transpose(1, 0, 2)[filled]
    return out


def _quantile_arrays(sample, top, cfg: LatentsConfig) -> dict[str, np.ndarray]:
    """From the uniform sample of firing windows: `n_per_quantile` per equal-count activation
    band, drawn in the sample's random order, skipping windows already among the top ones."""
    n_bands, per = cfg.n_quantiles, cfg.n_per_quantile
    d = sample["value"].shape[1]
    out = _empty(d, n_bands * per, cfg.span)
    for i in range(d):
        valid = np.flatnonzero(sample["filled"][:, i])  # already in key (random) order
        valid = valid[~np.isin(sample["unit"][valid, i], top["unit"][top["filled"][:, i], i])]
        if not valid.size:
            continue
        values = sample["value"][valid, i]
        rank = np.empty(valid.size, dtype=np.int64)
        rank[np.argsort(values, kind="stable")] = np.arange(valid.size)
        band = rank * n_bands // valid.size
        slot = 0
        for b in range(n_bands):
            for j in valid[band == b][:per]:
                for name in ("row", "length", "peak", "value"):
                    out[name][i, slot] = sample[name][j, i]
                out["acts"][i, slot] = sample["acts"][j, i]
                out["band"][i, slot] = b
                slot += 1
    return out


def _random_arrays(neg: _Negatives, starts, ends, cfg: LatentsConfig, d: int):
    """Non-activating examples: sampled windows where the latent is 0 throughout, each shown as
    a seeded random span of the window (the same span for every latent)."""
    out = _empty(d, cfg.n_random, cfg.span)
    filled = torch.isfinite(neg.key).cpu().numpy()
    units = neg.unit.cpu().numpy()[filled]
    fired = neg.fired.cpu().numpy()[filled]
    if not cfg.n_random or not units.size:
        return out
    ws, we = starts[units], ends[units]
    first = np.empty_like(ws)
    for k, u in enumerate(units):
        room = max(int(we[k] - ws[k]) - cfg.span, 0)
        first[k] = ws[k] + np.random.default_rng([cfg.seed, int(u)]).integers(0, room + 1)
    length = np.minimum(we - first, cfg.span)
    for i in range(d):
        quiet = np.flatnonzero(~fired[:, i])[: cfg.n_random]
        m = quiet.size
        out["row"][i, :m] = first[quiet]
        out["length"][i, :m] = length[quiet]
    return out


def _fill_tokens(store: ActivationStore, arrays: dict[str, np.ndarray], span: int) -> np.ndarray:
    rows, length = arrays["row"], arrays["length"].astype(np.int64)
    offsets = np.arange(span)
    valid = (rows[..., None] >= 0) & (offsets < length[..., None])
    tokens = np.full(valid.shape, -1, dtype=FIELDS["tokens"])
    wanted = (rows[..., None] + offsets)[valid]
    if wanted.size:
        tokens[valid] = store.tokens(wanted)["token_id"]
    arrays["tokens"] = tokens
    return tokens


def _write(cfg: LatentsConfig, store, layer, sae, col: _Collector, starts, ends, t0):
    out = Path(cfg.out)
    d = sae.cfg.d_sae
    token_ids: set[int] = set()
    for p in PARTS:
        top = _as_numpy(col.top[p])
        per_kind = {
            "top": _top_arrays(top, cfg.span),
            "quantile": _quantile_arrays(_as_numpy(col.sample[p]), top, cfg),
            "random": _random_arrays(col.negatives[p], starts, ends, cfg, d),
        }
        for kind in KINDS:
            arrays = per_kind[kind]
            token_ids.update(np.unique(_fill_tokens(store, arrays, cfg.span)).tolist())
            for field, dtype in FIELDS.items():
                save_array(example_file(out, p, kind, field), arrays[field].astype(dtype))
    freq = col.token_counts.cpu().numpy() / max(col.n_tokens, 1)
    save_array(out / "frequency.npy", freq.astype(np.float64))
    win = col.window_counts.cpu().numpy() / max(col.n_windows, 1)
    save_array(out / "window_frequency.npy", win.astype(np.float64))
    save_array(out / "max_activation.npy", col.max_act.cpu().numpy().astype(np.float32))
    hist = col.hist.cpu().numpy().reshape(d, len(HIST_EDGES) - 1)
    save_array(out / "histogram.npy", hist.astype(np.int64))
    save_array(out / "histogram_edges.npy", HIST_EDGES)
    vocab = token_strings(load_tokenizer(store.manifest.model), token_ids)
    n_dead = int((col.token_counts == 0).sum())
    sae_dir = Path(cfg.sae)
    weights = sae_dir / WEIGHTS_FILE
    meta = {
        "sae": {
            "path": str(sae_dir),
            "weights_sha256": sha256_file(weights) if weights.is_file() else None,
            "architecture": sae.cfg.architecture,
            "d_sae": d,
            "d_in": sae.cfg.d_in,
        },
        "store": {
            "path": str(store.path),
            "model": store.manifest.model,
            "layer": layer,
            "rows": [0, int(ends[-1]) if len(ends) else 0],
            "data": store.manifest.data,
        },
        "settings": cfg.model_dump(mode="json", exclude={"out", "progress", "device"}),
        "span": cfg.span,
        "n_tokens": col.n_tokens,
        "n_windows": col.n_windows,
        "counts": {"live": d - n_dead, "dead": n_dead},
        "mean_l0": float(freq.sum()),
        "seconds": round(time.perf_counter() - t0, 2),
        "key": records_key(sae_dir, store, cfg),
    }
    write_meta(out, meta, vocab)
    return meta


def records_key(sae_dir: Path, store: ActivationStore, cfg: LatentsConfig) -> str:
    """What the records depend on: the SAE's weights, the store's shards and the settings."""
    weights = sae_dir / WEIGHTS_FILE
    parts = [
        sha256_file(weights) if weights.is_file() else str(sae_dir),
        *(digest for shard in store.manifest.shards for digest in sorted(shard.files.values())),
        cfg.model_dump_json(exclude={"out", "progress", "device", "verify", "sae", "acts"}),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]
