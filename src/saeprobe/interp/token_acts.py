"""Per-token SAE activations over the user tokens of chat-formatted prompts (for highlighting).

The prompts are formatted and tokenised exactly as the probing features are
(`features.extract.tokenize_turns`: the model's chat template, user tokens only, long prompts
cut in the middle), so the token with the largest activation here is the token that set the
max-pooled feature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from saeprobe.activations.windows import Window, collate, pad_id
from saeprobe.features.extract import tokenize_turns
from saeprobe.lm.hooks import capture_layers
from saeprobe.lm.models import LoadedModel
from saeprobe.sae.base import SAE


@torch.no_grad()
def user_token_latents(
    lm: LoadedModel,
    layer: int,
    texts: Sequence[str],
    sae: SAE,
    latents: Sequence[int],
    context: int = 512,
    batch_size: int = 16,
) -> list[tuple[list[str], np.ndarray]]:
    """Per text: (user token strings, activations [n_user_tokens, len(latents)])."""
    device = next(lm.model.parameters()).device
    sae = sae.to(device).eval()
    turns = tokenize_turns(lm.tokenizer, texts, context)
    pad = pad_id(lm.tokenizer)
    cols = torch.as_tensor(list(latents), dtype=torch.long, device=device)
    out: list[tuple[list[str], np.ndarray]] = []
    for start in range(0, len(turns), batch_size):
        batch = turns[start : start + batch_size]
        enc = collate([Window(t.input_ids, t.user_mask, i) for i, t in enumerate(batch)], pad)
        hidden = capture_layers(
            lm.model,
            lm.blocks,
            [layer],
            input_ids=enc["input_ids"].to(device),
            attention_mask=enc["attention_mask"].to(device),
        )[layer].float()
        for row, turn in enumerate(batch):
            user = [i for i, m in enumerate(turn.user_mask) if m]
            z = sae.encode(hidden[row, user])[:, cols].clamp_min(0).cpu().numpy()
            tokens = [
                lm.tokenizer.decode([turn.input_ids[i]], clean_up_tokenization_spaces=False)
                for i in user
            ]
            out.append((tokens, z))
    return out
