"""Tokenise a whole conversation (user and assistant turns) and mark the tokens of its messages.

A chat SAE is trained on the model's own chat data: user prompts and the model's responses, as
the model sees them inside its chat template. Only the text of user and assistant messages is
marked; template tokens, special tokens and system messages (the default system prompt some
templates insert included) are context, never training data.

Where each message's text lies in the formatted conversation is learnt by rendering the template
once with unique placeholders as the message contents. That is exact for any template that
copies message text verbatim, and a template that rewrites it (strips or escapes it) is a
one-line error instead of a silently wrong mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from saeprobe.errors import DataError
from saeprobe.lm.chat import has_chat_template

STORED_ROLES = ("user", "assistant")
_FALLBACK_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}


@dataclass(frozen=True)
class Conversation:
    input_ids: list[int]
    mask: list[bool]  # True for tokens of user and assistant message text


def _placeholder(i: int) -> str:
    return f"\u27e6saeprobe-message-{i}\u27e7"


def _render(tokenizer, messages: Sequence[dict]) -> tuple[str, bool]:
    """The formatted conversation, and whether it already holds the model's special tokens."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(list(messages), tokenize=False), True
    # The fallback extends FALLBACK_TEMPLATE ("User: {prompt}\nAssistant:") turn by turn.
    lines = [f"{_FALLBACK_ROLES[m['role']]}: {m['content']}" for m in messages]
    return "\n".join(lines), False


def message_spans(tokenizer, messages: Sequence[dict]) -> tuple[str, list[tuple[int, int]], bool]:
    """(formatted text, character span of each stored message, has special tokens)."""
    marked = [{**m, "content": _placeholder(i)} for i, m in enumerate(messages)]
    skeleton, has_specials = _render(tokenizer, marked)
    text, spans, cursor = "", [], 0
    for i, m in enumerate(messages):
        at = skeleton.find(_placeholder(i), cursor)
        if at < 0:
            raise DataError(
                "the chat template dropped or rewrote a message, so its tokens cannot be "
                "located; pass messages the template keeps verbatim"
            )
        text += skeleton[cursor:at]
        if m["role"] in STORED_ROLES:
            spans.append((len(text), len(text) + len(m["content"])))
        text += m["content"]
        cursor = at + len(_placeholder(i))
    text += skeleton[cursor:]
    if _render(tokenizer, messages)[0] != text:
        raise DataError(
            "the chat template alters message text (e.g. strips whitespace), so its tokens "
            "cannot be located; strip leading/trailing whitespace from the messages"
        )
    return text, spans, has_specials


def tokenize_conversation(
    tokenizer, messages: Sequence[dict], max_length: int | None = None
) -> Conversation:
    """The chat-formatted conversation with a mask of its user and assistant text tokens.

    Past `max_length` the end is cut: in a causal model later tokens never change earlier
    activations, so the kept prefix is exactly what the model computes for it.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(
            f"chat formatting needs a fast tokenizer to locate message tokens; "
            f"{type(tokenizer).__name__} is not one: install `tokenizers`"
        )
    formatted, spans, has_specials = message_spans(tokenizer, messages)
    enc = tokenizer(
        formatted,
        add_special_tokens=not has_specials,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    mask = [
        not special and b > a and any(a < end and b > start for start, end in spans)
        for (a, b), special in zip(enc["offset_mapping"], enc["special_tokens_mask"], strict=True)
    ]
    ids = list(enc["input_ids"])
    if max_length is not None:
        ids, mask = ids[:max_length], mask[:max_length]
    return Conversation(ids, mask)
