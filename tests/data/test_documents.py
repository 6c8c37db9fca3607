"""Documents for a harvest: chat-file detection and mix sources, including a probing dataset's
train split (never its val or OOD prompts)."""

import json

import pytest
from pydantic import ValidationError

from saeprobe.data.documents import MixSource, data_format, is_chat_file, iter_documents
from saeprobe.data.prompts.cached import cached_dataset


def test_a_jsonl_of_messages_is_a_chat_file(tmp_path):
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    text = tmp_path / "text.jsonl"
    text.write_text(json.dumps({"text": "hi"}) + "\n")
    assert is_chat_file(str(chat), None) and not is_chat_file(str(text), None)
    assert not is_chat_file(str(chat), "text") and is_chat_file(str(chat), "messages")
    assert data_format(str(chat), None, chat=False) == "messages"
    assert data_format(str(text), None, chat=True) == "user_turn"
    assert data_format(str(text), None, chat=False) == "plain"
    docs = list(iter_documents(str(chat), None))
    assert docs == [[{"role": "user", "content": "hi"}]]


def test_mix_entries_take_one_source():
    with pytest.raises(ValidationError, match="exactly one of data"):
        MixSource(data="a.txt", dataset="default")
    with pytest.raises(ValidationError, match="exactly one of data"):
        MixSource(repeats=2)
    assert MixSource(dataset="default").split == "train"


def test_dataset_mix_yields_the_train_split_only(tmp_path, monkeypatch):
    monkeypatch.setenv("SAEPROBE_CACHE", str(tmp_path / "cache"))
    rows = cached_dataset("default")
    by_split = {s: {r.text for r in rows if r.split == s} for s in ("train", "val", "ood")}
    assert all(by_split.values())
    main = tmp_path / "main.txt"
    main.write_text("a plain document\n")
    docs = list(iter_documents(str(main), None, [MixSource(dataset="default", repeats=2)]))
    mixed = [d[0]["content"] for d in docs[:-1]]
    assert docs[-1] == "a plain document"
    assert all(d[0]["role"] == "user" and len(d) == 1 for d in docs[:-1])
    assert len(mixed) == 2 * len([r for r in rows if r.split == "train"])
    assert set(mixed) == by_split["train"]
    assert not set(mixed) & (by_split["val"] | by_split["ood"])
    assert rows == cached_dataset("default")  # built once, read back identically
