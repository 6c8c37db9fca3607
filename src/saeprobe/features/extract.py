"""Run the model once over chat-formatted prompts and pool, for every pooling and every SAE:
the residual at the layer, the SAE latents and the SAE reconstruction.

Every prompt is tokenised, and every fixed position checked against it, before the first forward
pass: a position outside some prompt is an error in seconds, not after the compute."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from saeprobe.activations.windows import Window, collate, pad_id
from saeprobe.errors import DataError
from saeprobe.features.pooling import Pooling
from saeprobe.features.tokens import SparseLatents, TokenCache, compact_float
from saeprobe.lm.chat import UserTurn, tokenize_user_turn
from saeprobe.lm.hooks import capture_layers
from saeprobe.lm.models import LoadedModel
from saeprobe.lm.precision import autocast
from saeprobe.sae.base import SAE


@dataclass
class Features:
    """Pooled features of n prompts, keyed by pooling name (and SAE name)."""

    dense: dict[str, np.ndarray] = field(default_factory=dict)  # pool -> [n, d_model]
    latents: dict[str, dict[str, np.ndarray]] = field(
        default_factory=dict
    )  # sae -> pool -> [n, d_sae]
    reconstruction: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    n_user_tokens: np.ndarray | None = None
    # Per-token activations of the pooled tokens, when extracted with per_token=True.
    tokens: TokenCache | None = None


def check_saes(saes: dict[str, SAE], lm: LoadedModel) -> None:
    for name, sae in saes.items():
        if sae.cfg.d_in != lm.d_model:
            raise DataError(
                f"SAE {name!r} has d_in={sae.cfg.d_in} but {lm.name} has d_model={lm.d_model}; "
                "use SAEs trained on this model's activations"
            )


def tokenize_turns(tokenizer, texts: Sequence[str], context: int) -> list[UserTurn]:
    turns = []
    for i, text in enumerate(texts):
        try:
            turns.append(tokenize_user_turn(tokenizer, text, context))
        except DataError as err:
            raise DataError(f"prompt {i}: {err}") from None
    return turns


def check_turns(turns: Sequence[UserTurn], poolings: Sequence[Pooling]) -> None:
    """Every prompt has user tokens and every fixed position lies inside every prompt.

    Tokenising is cheap next to the forward passes, so this runs first: a bad offset or prompt
    fails at once, never after minutes of compute.
    """
    positions = [p for p in poolings if p.method == "position"]
    for i, turn in enumerate(turns):
        if turn.last_user_token < 0:
            raise DataError(f"prompt {i} has no user tokens after tokenisation; remove it")
        for pool in positions:
            pool.row(turn.last_user_token, turn.end_of_turn, turn.length, prompt=i)


def length_order(turns: Sequence[UserTurn]) -> list[int]:
    """Prompt indices by token length: batches of similar lengths waste little on padding.
    Right padding keeps each prompt's values independent of its batch-mates."""
    return sorted(range(len(turns)), key=lambda i: (turns[i].length, i))


def _forward_batches(
    lm: LoadedModel, turns: Sequence[UserTurn], layers, batch_size, progress, use_autocast
):
    """Per batch, in `length_order`: the layout `Pooling.token_rows` takes and the float32
    residual at each of `layers`, from one forward pass cut after the deepest."""
    device = next(lm.model.parameters()).device
    pad = pad_id(lm.tokenizer)
    order = length_order(turns)
    for start in tqdm(range(0, len(turns), batch_size), disable=not progress, desc="features"):
        batch = [turns[i] for i in order[start : start + batch_size]]
        enc = collate([Window(t.input_ids, t.user_mask, i) for i, t in enumerate(batch)], pad)
        with autocast(use_autocast, device):
            captured = capture_layers(
                lm.model,
                lm.blocks,
                list(layers),
                input_ids=enc["input_ids"].to(device),
                attention_mask=enc["attention_mask"].to(device),
            )
        end_of_turn = torch.tensor([t.end_of_turn for t in batch])
        lengths = torch.tensor([t.length for t in batch])
        layout = (enc["keep"], end_of_turn, lengths)
        yield layout, {layer: h.float() for layer, h in captured.items()}


def _stack(rows: list[dict[str, np.ndarray]], pool: str, order: list[int]) -> np.ndarray:
    """Rows pooled in `order` back in prompt order."""
    stacked = np.stack([row[pool] for row in rows])
    return stacked[np.argsort(order)]


@torch.no_grad()
def extract_features(
    lm: LoadedModel,
    layer: int,
    texts: Sequence[str],
    saes: dict[str, SAE],
    poolings: Sequence[Pooling],
    context: int = 512,
    batch_size: int = 16,
    progress: bool = True,
    use_autocast: bool = False,
    per_token: bool = False,
) -> Features:
    """Pooled features of every prompt; with `per_token`, also the per-token activations of
    the pooled tokens (the user's text and any `position` token), from the same pass."""
    lm.check_layers([layer])
    check_saes(saes, lm)
    device = next(lm.model.parameters()).device
    saes = {name: sae.to(device).eval() for name, sae in saes.items()}
    out = {"dense": [], **{f"z:{s}": [] for s in saes}, **{f"r:{s}": [] for s in saes}}
    token_blocks: list[dict] | None = [] if per_token else None
    turns = tokenize_turns(lm.tokenizer, texts, context)
    check_turns(turns, poolings)
    batches = _forward_batches(lm, turns, [layer], batch_size, progress, use_autocast)
    for layout, hidden in batches:
        _pool_batch(hidden[layer], layout, saes, poolings, out, token_blocks)
    order = length_order(turns)
    feats = Features(n_user_tokens=np.asarray([sum(t.user_mask) for t in turns]))
    if token_blocks is not None:
        feats.tokens = _token_cache(token_blocks, order, list(saes))
    for p in poolings:
        feats.dense[p.name] = _stack(out["dense"], p.name, order)
        for s in saes:
            feats.latents.setdefault(s, {})[p.name] = _stack(out[f"z:{s}"], p.name, order)
            feats.reconstruction.setdefault(s, {})[p.name] = _stack(out[f"r:{s}"], p.name, order)
    return feats


def _token_cache(blocks: list[dict], order: list[int], sae_names: list[str]) -> TokenCache:
    """Concatenate the per-batch token rows (in `length_order`) back into prompt order."""
    lengths = np.concatenate([b["lengths"] for b in blocks])  # in length order
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    by_prompt = np.argsort(order)  # prompt i was the by_prompt[i]-th processed
    rows = np.concatenate([np.arange(starts[j], starts[j] + lengths[j]) for j in by_prompt])
    offsets = np.concatenate([[0], np.cumsum(lengths[by_prompt])]).astype(np.int64)

    def gather(key: str) -> np.ndarray:
        return np.concatenate([b[key] for b in blocks])[rows]

    latents = {}
    for name in sae_names:
        merged = SparseLatents.concatenate(
            [b["latents"][name] for b in blocks], blocks[0]["latents"][name].d_sae
        )
        counts = np.diff(merged.indptr)
        entry_rows = np.repeat(np.arange(counts.size), counts)
        # Entries of each row, rows in prompt order: a stable sort by the row's new index.
        new_index = np.empty(counts.size, dtype=np.int64)
        new_index[rows] = np.arange(rows.size)
        entries = np.argsort(new_index[entry_rows], kind="stable")
        latents[name] = SparseLatents(
            indptr=np.concatenate([[0], np.cumsum(counts[rows])]).astype(np.int64),
            indices=merged.indices[entries],
            values=merged.values[entries],
            d_sae=merged.d_sae,
        )
    return TokenCache(
        residual=compact_float(gather("residual")),
        offsets=offsets,
        positions=gather("positions"),
        is_user=gather("is_user"),
        latents=latents,
    )


@torch.no_grad()
def extract_residuals(
    lm: LoadedModel,
    layers: Sequence[int],
    texts: Sequence[str],
    poolings: Sequence[Pooling],
    context: int = 512,
    batch_size: int = 16,
    progress: bool = True,
    use_autocast: bool = False,
) -> dict[int, dict[str, np.ndarray]]:
    """Pooled residuals at several layers from one forward pass per batch: layer -> pool ->
    [n, d_model] (for choosing a probing layer)."""
    lm.check_layers(list(layers))
    turns = tokenize_turns(lm.tokenizer, texts, context)
    check_turns(turns, poolings)
    out: dict[int, dict[str, list]] = {layer: {"dense": []} for layer in layers}
    for layout, hidden in _forward_batches(lm, turns, layers, batch_size, progress, use_autocast):
        for layer in layers:
            _pool_batch(hidden[layer], layout, {}, poolings, out[layer])
    order = length_order(turns)
    return {
        layer: {p.name: _stack(out[layer]["dense"], p.name, order) for p in poolings}
        for layer in layers
    }


def _pool_batch(hidden, layout, saes, poolings, out, token_blocks=None) -> None:
    """Append, per prompt, {pool name: vector} for the residual and each SAE's latents/recon.

    `layout` is (user mask, closing-token index, length) per prompt, what `token_rows` takes.
    Only token rows some pooling reads are kept, and each SAE runs once on all of them. With
    `token_blocks`, every user token is kept too, and the batch's per-token rows are appended
    there (see `_token_cache`).
    """
    rows_by_pool = {p.name: p.token_rows(*layout) for p in poolings}
    sources = list(rows_by_pool.values())
    if token_blocks is not None:
        user_mask = layout[0]
        sources.append([torch.nonzero(m).flatten() for m in user_mask])
    needed, local, offsets, kept = [], [], [0], []
    for i in range(hidden.shape[0]):
        rows = torch.unique(torch.cat([r[i] for r in sources]))
        kept.append(rows)
        needed.append(hidden[i, rows])
        local.append({name: torch.searchsorted(rows, r[i]) for name, r in rows_by_pool.items()})
        offsets.append(offsets[-1] + len(rows))
    h_all = torch.cat(needed)
    matrices = {"dense": h_all}
    for name, sae in saes.items():
        z = sae.encode(h_all)
        matrices[f"z:{name}"], matrices[f"r:{name}"] = z, sae.decode(z)
    if token_blocks is not None:
        user_mask = layout[0]
        token_blocks.append(
            {
                "lengths": np.diff(offsets),
                "residual": compact_float(h_all.cpu().numpy()),
                "positions": torch.cat(kept).numpy().astype(np.int32),
                "is_user": torch.cat([user_mask[i, r] for i, r in enumerate(kept)]).numpy(),
                "latents": {
                    name: SparseLatents.from_dense(matrices[f"z:{name}"].cpu()) for name in saes
                },
            }
        )
    for key, matrix in matrices.items():
        for i in range(hidden.shape[0]):
            block = matrix[offsets[i] : offsets[i + 1]]
            out[key].append(
                {p.name: p.pool(block[local[i][p.name]]).cpu().numpy() for p in poolings}
            )
