"""Run the model once over chat-formatted prompts and pool, for every pooling and every SAE:
the residual at the layer, the SAE latents and the SAE reconstruction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from saeprobe.activations.windows import Window, collate, pad_id
from saeprobe.errors import DataError
from saeprobe.features.pooling import Pooling
from saeprobe.lm.chat import tokenize_user_turn
from saeprobe.lm.hooks import capture_layers
from saeprobe.lm.models import LoadedModel
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


def check_saes(saes: dict[str, SAE], lm: LoadedModel) -> None:
    for name, sae in saes.items():
        if sae.cfg.d_in != lm.d_model:
            raise DataError(
                f"SAE {name!r} has d_in={sae.cfg.d_in} but {lm.name} has d_model={lm.d_model}; "
                "use SAEs trained on this model's activations"
            )


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
) -> Features:
    lm.check_layers([layer])
    check_saes(saes, lm)
    device = next(lm.model.parameters()).device
    saes = {name: sae.to(device).eval() for name, sae in saes.items()}
    out = {"dense": [], **{f"z:{s}": [] for s in saes}, **{f"r:{s}": [] for s in saes}}
    n_user = []
    pad = pad_id(lm.tokenizer)
    for start in tqdm(range(0, len(texts), batch_size), disable=not progress, desc="features"):
        turns = [
            tokenize_user_turn(lm.tokenizer, t, context) for t in texts[start : start + batch_size]
        ]
        enc = collate([Window(t.input_ids, t.user_mask, i) for i, t in enumerate(turns)], pad)
        ids, attention, user = enc["input_ids"], enc["attention_mask"], enc["keep"]
        if not user.any(dim=1).all():
            raise DataError("a prompt has no user tokens after tokenisation; remove empty prompts")
        hidden = capture_layers(
            lm.model,
            lm.blocks,
            [layer],
            input_ids=ids.to(device),
            attention_mask=attention.to(device),
        )[layer].float()
        n_user.extend(user.sum(1).tolist())
        _pool_batch(hidden, user, saes, poolings, out)
    feats = Features(n_user_tokens=np.asarray(n_user))
    for p in poolings:
        feats.dense[p.name] = np.stack([row[p.name] for row in out["dense"]])
        for s in saes:
            feats.latents.setdefault(s, {})[p.name] = np.stack([r[p.name] for r in out[f"z:{s}"]])
            feats.reconstruction.setdefault(s, {})[p.name] = np.stack(
                [r[p.name] for r in out[f"r:{s}"]]
            )
    return feats


def _pool_batch(hidden, user, saes, poolings, out) -> None:
    """Append, per prompt, {pool name: vector} for the residual and each SAE's latents/recon.

    Only token rows some pooling reads are kept, and each SAE runs once on all of them.
    """
    rows_by_pool = {p.name: p.token_rows(user) for p in poolings}
    needed, local, offsets = [], [], [0]
    for i in range(hidden.shape[0]):
        rows = torch.unique(torch.cat([r[i] for r in rows_by_pool.values()]))
        needed.append(hidden[i, rows])
        local.append({name: torch.searchsorted(rows, r[i]) for name, r in rows_by_pool.items()})
        offsets.append(offsets[-1] + len(rows))
    h_all = torch.cat(needed)
    matrices = {"dense": h_all}
    for name, sae in saes.items():
        z = sae.encode(h_all)
        matrices[f"z:{name}"], matrices[f"r:{name}"] = z, sae.decode(z)
    for key, matrix in matrices.items():
        for i in range(hidden.shape[0]):
            block = matrix[offsets[i] : offsets[i + 1]]
            out[key].append(
                {p.name: p.pool(block[local[i][p.name]]).cpu().numpy() for p in poolings}
            )
