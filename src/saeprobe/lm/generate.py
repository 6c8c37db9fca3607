"""Batched generation of a chat model's own responses to user prompts.

Each prompt becomes the user turn of a chat (`format_user_turn`: the model's template, or the
documented fallback) and the model continues it until its tokenizer's end-of-sequence token or
`max_new_tokens`. Batches are left-padded: a decoder-only model continues from the last column,
so every prompt must end there. The padding is built here from per-prompt token ids, so the
shared tokenizer's `padding_side` is never touched.

Greedy decoding by default. Sampling (temperature, nucleus top-p, no top-k cut) draws from a
private RNG seeded by the caller, so a batch's samples depend only on its prompts and its seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch

from saeprobe.errors import DataError
from saeprobe.lm.chat import format_user_turn

FinishReason = Literal["eos", "length"]


class Response(NamedTuple):
    text: str  # decoded without special tokens, stripped
    finish_reason: FinishReason
    n_tokens: int  # generated tokens before the end-of-sequence token (which is not counted)


@dataclass(frozen=True)
class Sampling:
    """Nucleus sampling settings; `None` in place of a Sampling means greedy decoding."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Token ids of `prompt` as a chat user turn ending in the assistant's generation prompt."""
    if not prompt.strip():
        raise DataError("a prompt is empty; remove empty prompts from the data")
    formatted, has_specials = format_user_turn(tokenizer, prompt)
    # A template already holds its special tokens; the fallback gets the tokenizer's usual ones.
    return list(tokenizer(formatted, add_special_tokens=not has_specials)["input_ids"])


def plan_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Prompt indices grouped into batches of similar token length, to waste little padding.

    The plan depends only on the lengths and the batch size (ties keep prompt order), so a resumed
    run rebuilds exactly the batches of the interrupted one.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def batch_seed(seed: int, batch: int) -> int:
    """A well-mixed seed for batch `batch` of a run seeded with `seed` (both non-negative)."""
    return int(np.random.SeedSequence([seed, batch]).generate_state(1, dtype=np.uint64)[0] >> 1)


def eos_ids(model, tokenizer) -> list[int]:
    """The tokenizer's end-of-sequence id, else the model's; empty when neither has one."""
    eos = tokenizer.eos_token_id
    if eos is None:
        eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        return []
    return [int(e) for e in eos] if isinstance(eos, list | tuple) else [int(eos)]


def pad_token_id(tokenizer, eos: Sequence[int]) -> int:
    for candidate in (tokenizer.pad_token_id, *eos, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def left_pad(encoded: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both [B, T], with every row's tokens flush right."""
    width = max(len(ids) for ids in encoded)
    input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, ids in enumerate(encoded):
        if ids:
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
    return input_ids, attention


def generate_responses(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int = 64,
    sampling: Sampling | None = None,
) -> list[Response]:
    """The model's response to each prompt, generated as one batch, in prompt order."""
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    return generate_encoded(model, tokenizer, encoded, max_new_tokens, sampling)


@torch.inference_mode()
def generate_encoded(
    model,
    tokenizer,
    encoded: Sequence[Sequence[int]],
    max_new_tokens: int = 64,
    sampling: Sampling | None = None,
) -> list[Response]:
    """`generate_responses` for prompts already through `encode_prompt`."""
    if not encoded:
        return []
    eos = eos_ids(model, tokenizer)
    pad = pad_token_id(tokenizer, eos)
    device = next(model.parameters()).device
    input_ids, attention = (t.to(device) for t in left_pad(encoded, pad))
    kwargs = {
        "max_new_tokens": max_new_tokens,
        "eos_token_id": eos or None,
        "pad_token_id": pad,
        "do_sample": sampling is not None,
    }
    if sampling is None:
        sequences = model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
    else:
        # top_k=0: transformers otherwise adds a top-50 cut the caller never asked for.
        kwargs |= {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": 0}
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # leave the caller's RNG streams alone
            torch.manual_seed(sampling.seed)
            sequences = model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
    new_tokens = sequences[:, input_ids.shape[1] :].tolist()
    return [_response(tokenizer, ids, eos) for ids in new_tokens]


def _response(tokenizer, ids: list[int], eos: Sequence[int]) -> Response:
    """Cut a generated row at its first end-of-sequence token; rows that finished early are
    padded after it, rows without one ran into the length limit."""
    stop = next((i for i, t in enumerate(ids) if t in eos), None)
    kept = ids if stop is None else ids[:stop]
    text = tokenizer.decode(kept, skip_special_tokens=True).strip()
    return Response(text, "length" if stop is None else "eos", len(kept))
