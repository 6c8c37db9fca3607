"""Tokenise documents into context windows and mark which tokens are harvested.

Plain text: each document is cut into windows of `context` tokens, each window with the
tokenizer's own special tokens (BOS, or CLS/SEP) around its content. Chat: each document is one
user turn, truncated to `context`. Special tokens, padding and chat-template tokens are never
harvested; every other token is, with its document id and position in the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from saeprobe.errors import DataError
from saeprobe.lm.chat import tokenize_user_turn


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
        yield Window(prefix + chunk + suffix, keep, doc_id, n)


def chat_window(tokenizer, doc_id: int, text: str, context: int) -> Window:
    turn = tokenize_user_turn(tokenizer, text, max_length=context)
    return Window(turn.input_ids, turn.user_mask, doc_id)


def iter_windows(
    docs: Iterable[tuple[int, str]], tokenizer, context: int, chat: bool = False
) -> Iterator[Window]:
    if context < 2:
        raise DataError(f"--context must be at least 2 tokens (got {context})")
    for doc_id, text in docs:
        if chat:
            window = chat_window(tokenizer, doc_id, text, context)
            if any(window.keep):
                yield window
        else:
            for window in plain_windows(tokenizer, doc_id, text, context):
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
