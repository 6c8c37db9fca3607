import pytest

from saeprobe.data.prompts.examples import HARMFUL, HARMLESS, BasePrompt, Example
from saeprobe.data.prompts.split import (
    assign_splits,
    check_classes,
    check_no_leakage,
    dedup_key,
    drop_repeated_texts,
    make_base_id,
)
from saeprobe.errors import DataError


def _bases(n: int, label: int, source: str, role: str = "train") -> list[BasePrompt]:
    texts = [f"{source} prompt number {i}" for i in range(n)]
    return [BasePrompt(t, label, source, make_base_id(source, t), role) for t in texts]


def test_dedup_key_ignores_case_and_whitespace():
    assert dedup_key("  Hello   World\n") == dedup_key("hello world")
    assert make_base_id("a", "Hello  world") == make_base_id("a", "hello world")


def test_assignment_fractions_and_roles():
    bases = _bases(50, HARMFUL, "h") + _bases(40, HARMLESS, "n") + _bases(7, HARMFUL, "o", "ood")
    split = assign_splits(bases, val_fraction=0.2, ood_fraction=0.2, seed=1)
    by = {s: [b for b in bases if split[b.base_id] == s] for s in ("train", "val", "ood")}
    assert sum(b.source == "h" for b in by["ood"]) == 10  # reserved: harmful only
    assert sum(b.source == "n" for b in by["ood"]) == 0
    assert sum(b.source == "h" for b in by["val"]) == 8  # 20 % of the 40 left
    assert sum(b.source == "n" for b in by["val"]) == 8
    assert all(split[b.base_id] == "ood" for b in bases if b.source == "o")
    assert split == assign_splits(list(reversed(bases)), 0.2, 0.2, seed=1)  # order-free


def test_one_class_split_is_an_error_naming_split_and_fix():
    rows = [
        Example("a", HARMFUL, "s", "none", "train", "1"),
        Example("b", HARMLESS, "s", "none", "train", "2"),
    ]
    rows.append(Example("c", HARMFUL, "s", "none", "ood", "3"))
    with pytest.raises(DataError, match="split 'ood' has only harmful rows.*harmless"):
        check_classes(rows)
    with pytest.raises(DataError, match="train split is empty"):
        check_classes(rows[2:])
    check_classes(rows[:2])


def test_leakage_check_catches_ids_and_texts():
    a = Example("same text", HARMFUL, "s", "none", "train", "1")
    with pytest.raises(DataError, match="base prompt '1' is in both train and val"):
        check_no_leakage([a, Example("other", HARMFUL, "s", "x", "val", "1")])
    with pytest.raises(DataError, match="text 'same text' is in both train and ood"):
        check_no_leakage([a, Example("same text", HARMLESS, "s", "none", "ood", "2")])
    kept, dropped = drop_repeated_texts(
        [Example("same text", HARMLESS, "s", "none", "ood", "2"), a]
    )
    assert dropped == 1 and kept == [a]
