"""Wrap a text as the user turn of a chat and find which tokens belong to the user's text.

Models with a chat template use it (`apply_chat_template` with the generation prompt). A model
without one gets the documented fallback `FALLBACK_TEMPLATE` ("User: ...\\nAssistant:"), tokenised
with the tokenizer's usual special tokens. Either way only tokens inside the user's text are
marked: the template's prefix and suffix tokens are not activations of the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from saeprobe.errors import DataError

FALLBACK_TEMPLATE = "User: {prompt}\nAssistant:"


@dataclass(frozen=True)
class UserTurn:
    input_ids: list[int]
    user_mask: list[bool]  # True for tokens of the user's text (not template, not special)


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_user_turn(tokenizer, text: str) -> tuple[str, bool]:
    """(chat-formatted string, whether it already contains the model's special tokens)."""
    if has_chat_template(tokenizer):
        formatted = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
        return formatted, True
    # Replacement, not str.format: prompts may contain braces.
    return FALLBACK_TEMPLATE.replace("{prompt}", text), False


def tokenize_user_turn(tokenizer, text: str, max_length: int | None = None) -> UserTurn:
    """The chat-formatted `text`, with a mask of the user's own tokens.

    Past `max_length`, user tokens are dropped from the middle of the user's text: the template
    and both ends of the prompt survive. That matters for jailbreak wrappers, which often put the
    request at the very end, and for pooling at the end of the user turn.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(
            f"chat formatting needs a fast tokenizer to locate the user's tokens; "
            f"{type(tokenizer).__name__} is not one: install `tokenizers` or drop --chat"
        )
    if not text.strip():
        raise DataError("a prompt is empty; remove empty prompts from the data")
    formatted, has_specials = format_user_turn(tokenizer, text)
    start = formatted.find(text)
    if start < 0:
        raise DataError(
            "the chat template altered the prompt text, so its tokens cannot be located; "
            "strip leading/trailing whitespace from the prompts or drop --chat"
        )
    end = start + len(text)
    enc = tokenizer(
        formatted,
        add_special_tokens=not has_specials,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    ids = list(enc["input_ids"])
    mask = [
        not special and a < end and b > start and b > a
        for (a, b), special in zip(enc["offset_mapping"], enc["special_tokens_mask"], strict=True)
    ]
    if max_length is not None and len(ids) > max_length:
        ids, mask = _cut_middle(ids, mask, max_length)
    return UserTurn(ids, mask)


def _cut_middle(ids: list[int], mask: list[bool], max_length: int) -> tuple[list[int], list[bool]]:
    user = [i for i, m in enumerate(mask) if m]
    excess = len(ids) - max_length
    if len(user) - excess < 2:
        raise DataError(
            f"the chat template alone needs {len(ids) - len(user)} of the {max_length} tokens "
            "allowed; raise the context length"
        )
    keep = len(user) - excess
    head = keep // 2
    drop = set(user[head : head + excess])
    kept = [i for i in range(len(ids)) if i not in drop]
    return [ids[i] for i in kept], [mask[i] for i in kept]
