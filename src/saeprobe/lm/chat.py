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
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(
            f"chat formatting needs a fast tokenizer to locate the user's tokens; "
            f"{type(tokenizer).__name__} is not one: install `tokenizers` or drop --chat"
        )
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
        truncation=max_length is not None,
        max_length=max_length,
    )
    mask = [
        not special and a < end and b > start and b > a
        for (a, b), special in zip(enc["offset_mapping"], enc["special_tokens_mask"], strict=True)
    ]
    return UserTurn(list(enc["input_ids"]), mask)
