"""Wrap a text as the user turn of a chat and find which tokens belong to the user's text.

Models with a chat template use it (`apply_chat_template` with the generation prompt), as
served: SmolLM2's template inserts its default system prompt ("You are a helpful AI assistant
named SmolLM, ...") when none is given, and we keep it, because the study used each model's
template as served. Those system-prompt tokens are template tokens like any other: they are
never marked as user tokens, so no pooling reads them unless a fixed position asks for one. A
model without a template gets the documented fallback `FALLBACK_TEMPLATE`
("User: ...\\nAssistant:"), tokenised with the tokenizer's usual special tokens.

Where the user's text lies is learnt by rendering the template once with a unique placeholder as
the content: the text starts exactly where the placeholder did, after the template's prefix. A
search for the text itself would match inside the prefix for short prompts ("user", "system",
"You" all occur in SmolLM2's prefix). A template that rewrites the text (e.g. strips it) is a
one-line error instead of a silently wrong mask.

Besides the user mask, a `UserTurn` records the token that closes the user turn: the first token
whose character span starts at or after the end of the user's text (`<|im_end|>` in ChatML,
`<end_of_turn>` in Gemma, what follows the text in the fallback). Fixed-position pooling counts
from it, which names the same token under any template.
"""

from __future__ import annotations

from dataclasses import dataclass

from saeprobe.errors import DataError

FALLBACK_TEMPLATE = "User: {prompt}\nAssistant:"
_PLACEHOLDER = "\u27e6saeprobe-user-text\u27e7"


@dataclass(frozen=True)
class UserTurn:
    input_ids: list[int]
    user_mask: list[bool]  # True for tokens of the user's text (not template, not special)
    # Index of the token closing the user turn; len(input_ids) if the template puts none there.
    end_of_turn: int

    @property
    def length(self) -> int:
        return len(self.input_ids)

    @property
    def last_user_token(self) -> int:
        """Index of the last user token (-1 when, unusually, no token is the user's)."""
        return max((i for i, m in enumerate(self.user_mask) if m), default=-1)


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


def user_text_span(tokenizer, text: str) -> tuple[str, int, bool]:
    """(formatted turn, character index where `text` starts in it, has special tokens)."""
    skeleton, _ = format_user_turn(tokenizer, _PLACEHOLDER)
    formatted, has_specials = format_user_turn(tokenizer, text)
    start = skeleton.find(_PLACEHOLDER)
    verbatim = skeleton[:start] + text + skeleton[start + len(_PLACEHOLDER) :]
    if start < 0 or formatted != verbatim:
        raise DataError(
            "the chat template altered the prompt text, so its tokens cannot be located; "
            "strip leading/trailing whitespace from the prompts or drop --chat"
        )
    return formatted, start, has_specials


def tokenize_user_turn(tokenizer, text: str, max_length: int | None = None) -> UserTurn:
    """The chat-formatted `text`, with a mask of the user's own tokens and the closing token.

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
    formatted, start, has_specials = user_text_span(tokenizer, text)
    end = start + len(text)
    enc = tokenizer(
        formatted,
        add_special_tokens=not has_specials,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    offsets = enc["offset_mapping"]
    mask = [
        not special and a < end and b > start and b > a
        for (a, b), special in zip(offsets, enc["special_tokens_mask"], strict=True)
    ]
    closing = next((i for i, (a, _) in enumerate(offsets) if a >= end), len(offsets))
    turn = UserTurn(list(enc["input_ids"]), mask, closing)
    if max_length is not None and turn.length > max_length:
        turn = _cut_middle(turn, max_length)
    return turn


def _cut_middle(turn: UserTurn, max_length: int) -> UserTurn:
    user = [i for i, m in enumerate(turn.user_mask) if m]
    excess = turn.length - max_length
    if len(user) - excess < 2:
        raise DataError(
            f"the chat template alone needs {turn.length - len(user)} of the {max_length} tokens "
            "allowed; raise the context length"
        )
    head = (len(user) - excess) // 2
    drop = set(user[head : head + excess])
    kept = [i for i in range(turn.length) if i not in drop]
    # Only user tokens are dropped, and they all precede the closing token.
    return UserTurn(
        [turn.input_ids[i] for i in kept],
        [turn.user_mask[i] for i in kept],
        turn.end_of_turn - sum(1 for i in drop if i < turn.end_of_turn),
    )
