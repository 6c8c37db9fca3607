"""The documents a harvest reads: the main data, with optional mixed-in sources first.

A document is a text or a conversation. A JSONL file whose rows hold `messages` (what
`saeprobe rollouts` writes) is a chat file and yields conversations; everything `iter_texts`
reads yields texts. A mix source adds documents before the main data, each repeated `repeats`
times: a file, or one split of a probing dataset (`dataset: CONFIG.yaml | default`, `split:
train`), so an SAE can see the probe's training prompts without ever seeing its evaluation ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from saeprobe.data.text import iter_texts

Format = Literal["plain", "user_turn", "messages"]
CHAT_FIELD = "messages"


class MixSource(BaseModel):
    """Extra documents harvested before the main data, each repeated `repeats` times."""

    model_config = ConfigDict(extra="forbid")

    data: str | None = Field(None, description="a file, as for --data")
    field: str | None = None
    dataset: str | None = Field(
        None, description="a probing-dataset config YAML, or 'default' for the built-in one"
    )
    split: Literal["train", "val", "ood"] = Field(
        "train", description="the dataset split to mix in; only train keeps evaluation clean"
    )
    repeats: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> MixSource:
        if (self.data is None) == (self.dataset is None):
            raise ValueError("a mix entry takes exactly one of data: FILE or dataset: CONFIG")
        if self.dataset is not None and self.field is not None:
            raise ValueError("a dataset mix entry takes no field (it mixes the prompt texts)")
        return self


def is_chat_file(data: str, field: str | None) -> bool:
    """A .jsonl whose rows hold `messages` (or read with --field messages)."""
    path = Path(data)
    if path.suffix.lower() != ".jsonl" or not path.is_file():
        return False
    if field is not None:
        return field == CHAT_FIELD
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    return False  # iter_texts names the bad line
                return isinstance(row, dict) and CHAT_FIELD in row
    return False


def data_format(data: str, field: str | None, chat: bool) -> Format:
    if is_chat_file(data, field):
        return "messages"
    return "user_turn" if chat else "plain"


def mix_format(source: MixSource, chat: bool) -> Format:
    if source.dataset is not None:
        return "user_turn"  # probe prompts are requests: always formatted as a user turn
    return data_format(source.data, source.field, chat)


def iter_source(data: str, field: str | None) -> Iterator[str | list[dict]]:
    if is_chat_file(data, field):
        from saeprobe.data.rollouts import iter_chats

        yield from iter_chats(Path(data))
    else:
        yield from iter_texts(data, field)


def iter_mix(source: MixSource) -> Iterator[str | list[dict]]:
    if source.dataset is not None:
        from saeprobe.data.prompts.cached import split_texts

        # A user turn even in a plain-text store: a request only means something as one.
        texts = split_texts(source.dataset, source.split)
        yield from ([{"role": "user", "content": t}] for t in texts)
    else:
        yield from iter_source(source.data, source.field)


def iter_documents(
    data: str, field: str | None, mix: Sequence[MixSource] = ()
) -> Iterator[str | list[dict]]:
    """The mix sources (each repeated), then the main data: the order doc ids count in."""
    for source in mix:
        for _ in range(source.repeats):
            yield from iter_mix(source)
    yield from iter_source(data, field)
