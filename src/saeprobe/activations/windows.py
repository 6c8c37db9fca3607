"""Tokenise documents into context windows and mark which tokens are harvested.

A document is a text or a conversation (a list of chat messages, e.g. a rollout).
- Plain text: each document is cut into windows of `context` tokens, each window with the
  tokenizer's own special tokens (BOS, or CLS/SEP) around its content.
- Text with `chat`: each document is one user turn in the model's chat template, truncated to
  `context` by dropping the middle of the user text.
- A conversation: the whole chat in the template, its end cut at `context`; the user and
  assistant text is harvested.

Special tokens, padding, chat-template tokens and system messages are never harvested. Nor is
the first token of a window: without a BOS (SmolLM2, GPT-2) it is the attention sink, whose
residual norm is over 100x the median in SmolLM2's middle layers, and it would dominate any SAE
trained on it. Every other token is harvested, with its document id and position in the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from saeprobe.errors import DataError
from saeprobe.lm.chat import tokenize_user_turn
from saeprobe.lm.conversation import tokenize_conversation

Document = str | list[dict]  # a text, or a conversation of {"role", "content"} messages


@dataclass(frozen=True)
class Window:
    input_ids: list[int]
    keep: list[bool]
    doc_id: int
    window: int = 0  # index of this window within its document


def _quiet_length_warning(tokenizer) -> None:
    # Long documents are split below, so the "sequence longer than the model max" warning is moot.
    warned = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True


def special_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text (e.g. [CLS] / [SEP], BOS)."""
    bare = tokenizer("hello", add_special_tokens=False)["input_ids"]
    full = tokenizer("hello", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return full[:start], full[start + len(bare) :]
    return [], []


def plain_windows(tokenizer, doc_id: int, text: str, context: int) -> Iterator[Window]:
    prefix, suffix = special_frame(tokenizer)
    width = context - len(prefix) - len(suffix)
    if width < 1:
        need = len(prefix) + len(suffix) + 1
        raise DataError(f"--context {context} leaves no room for text; use at least {need}")
    _quiet_length_warning(tokenizer)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    special = set(tokenizer.all_special_ids)
    for n, start in enumerate(range(0, len(ids), width)):
        chunk = ids[start : start + width]
        keep = [False] * len(prefix) + [t not in special for t in chunk] + [False] * len(suffix)
        keep[0] = False  # the attention sink when there is no BOS (see module docstring)
        yield Window(prefix + chunk + suffix, keep, doc_id, n)


def chat_window(tokenizer, doc_id: int, text: str, context: int) -> Window:
    turn = tokenize_user_turn(tokenizer, text, max_length=context)
    return Window(turn.input_ids, turn.user_mask, doc_id)


def conversation_window(tokenizer, doc_id: int, messages: list[dict], context: int) -> Window:
    conv = tokenize_conversation(tokenizer, messages, max_length=context)
    return Window(conv.input_ids, conv.mask, doc_id)


def document_windows(tokenizer, doc_id: int, doc: Document, context: int, chat: bool):
    if isinstance(doc, list):
        if len(doc) == 1 and doc[0]["role"] == "user":  # a lone request is a user turn
            return [chat_window(tokenizer, doc_id, doc[0]["content"], context)]
        return [conversation_window(tokenizer, doc_id, doc, context)]
    if chat:
        return [chat_window(tokenizer, doc_id, doc, context)]
    return plain_windows(tokenizer, doc_id, doc, context)


def iter_windows(
    docs: Iterable[tuple[int, Document]], tokenizer, context: int, chat: bool = False
) -> Iterator[Window]:
    """Windows of every document; `chat` formats text documents as user turns."""
    if context < 2:
        raise DataError(f"--context must be at least 2 tokens (got {context})")
    for doc_id, doc in docs:
        for window in document_windows(tokenizer, doc_id, doc, context, chat):
            if any(window.keep):
                yield window


def pad_id(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def collate(windows: list[Window], pad: int) -> dict[str, Tensor]:
    """Right-padded `input_ids`, `attention_mask`, `keep` mask and `positions`, all [B, T]."""
    length = max(len(w.input_ids) for w in windows)
    ids = torch.full((len(windows), length), pad, dtype=torch.long)
    attention = torch.zeros((len(windows), length), dtype=torch.long)
    keep = torch.zeros((len(windows), length), dtype=torch.bool)
    for row, w in enumerate(windows):
        n = len(w.input_ids)
        ids[row, :n] = torch.tensor(w.input_ids)
        attention[row, :n] = 1
        keep[row, :n] = torch.tensor(w.keep)
    positions = torch.arange(length).expand(len(windows), length)
    return {"input_ids": ids, "attention_mask": attention, "keep": keep, "positions": positions}
