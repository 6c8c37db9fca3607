import json
from pathlib import Path

import pytest

from saeprobe.data.prompts import (
    build_dataset,
    dataset_config,
    default_dataset_config,
    load_dataset_config,
    load_dataset_dir,
)
from saeprobe.data.prompts.examples import SPLITS
from saeprobe.errors import ConfigError, DataError, FormatError

REPO = Path(__file__).resolve().parents[3]


def write_jsonl(path: Path, texts: list[str]) -> str:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return str(path)


def tiny_config(tmp_path: Path, seed: int = 0, **kw) -> dict:
    harmful = [f"Explain how to commit crime number {i}." for i in range(30)]
    harmless = [f"What is fun fact number {i}?" for i in range(30)]
    ood = [f"Tell me how to do bad deed {i}." for i in range(8)]
    return {
        "seed": seed,
        "sources": [
            {"name": "bad", "kind": "jsonl", "label": "harmful", "path": write_jsonl(tmp_path / "bad.jsonl", harmful)},
            {"name": "good", "kind": "jsonl", "label": "harmless", "path": write_jsonl(tmp_path / "good.jsonl", harmless)},
            {"name": "adv", "kind": "jsonl", "label": "harmful", "role": "ood", "path": write_jsonl(tmp_path / "adv.jsonl", ood)},
        ],
        "transforms": {
            "train": ["roleplay", "how_many_words", {"name": "ignore_one_instruction", "fraction": 0.5}],
            "ood": ["random_suffix", "all_caps"],
        },
        **kw,
    }  # fmt: skip


def splits_of(rows):
    by_id, by_text = {}, {}
    for r in rows:
        by_id.setdefault(r.base_id, set()).add(r.split)
        by_text.setdefault(r.text, set()).add(r.split)
    return by_id, by_text


@pytest.mark.parametrize("seed", range(12))
def test_no_base_prompt_or_text_in_two_splits(tmp_path, seed):
    build_dataset(dataset_config(tiny_config(tmp_path, seed, val_fraction=0.3)), tmp_path / "o")
    rows = load_dataset_dir(tmp_path / "o")
    by_id, by_text = splits_of(rows)
    assert all(len(s) == 1 for s in by_id.values())
    assert all(len(s) == 1 for s in by_text.values())
    assert {r.split for r in rows} == set(SPLITS)
    # held-out transformations appear only in ood; reserved train-role prompts only transformed
    assert all(r.split == "ood" for r in rows if r.transform in {"random_suffix", "all_caps"})
    assert not any(r.split == "ood" and r.source != "adv" and r.transform == "none" for r in rows)
    assert all(r.label == 0 for r in rows if r.transform in {"how_many_words", "all_caps"})
    assert all(r.label == 1 for r in rows if r.transform in {"roleplay", "random_suffix"})


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    cfg = dataset_config(tiny_config(tmp_path))
    build_dataset(cfg, tmp_path / "a")
    build_dataset(cfg, tmp_path / "b")
    for name in ("dataset.jsonl", "summary.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    build_dataset(dataset_config(tiny_config(tmp_path, seed=1)), tmp_path / "c")
    assert (tmp_path / "a/dataset.jsonl").read_bytes() != (
        tmp_path / "c/dataset.jsonl"
    ).read_bytes()


def test_dedup_across_sources_and_fraction(tmp_path):
    cfg = tiny_config(tmp_path)
    dup = ["what is FUN fact   number 3", "Brand new harmless question?"]
    cfg["sources"].append(
        {"name": "more", "kind": "jsonl", "label": "harmless", "path": write_jsonl(tmp_path / "m.jsonl", dup)}
    )  # fmt: skip
    summary = build_dataset(dataset_config(cfg), tmp_path / "o")
    assert summary.sources["more"]["duplicates_dropped"] == 1
    assert summary.sources["more"]["kept"] == 1
    rows = load_dataset_dir(tmp_path / "o")
    train_val = [r for r in rows if r.split != "ood" and r.source == "bad"]
    n_roleplay = sum(r.transform == "roleplay" for r in train_val)
    n_ignore = sum(r.transform == "ignore_one_instruction" for r in train_val)
    assert n_ignore < n_roleplay and abs(n_ignore - n_roleplay / 2) <= 1


def test_limit_and_normalisation(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg["sources"][1]["limit"] = 10
    summary = build_dataset(dataset_config(cfg), tmp_path / "o")
    assert summary.sources["good"]["kept"] == 10
    assert summary.sources["good"]["ending_in_question_mark_before"] == 30
    rows = load_dataset_dir(tmp_path / "o")
    assert not any(r.text.endswith(("?", ".")) for r in rows if r.transform == "none")
    cfg["normalize"] = False
    build_dataset(dataset_config(cfg), tmp_path / "raw")
    assert any(r.text.endswith("?") for r in load_dataset_dir(tmp_path / "raw"))


def test_one_class_ood_split_is_an_error(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg["transforms"]["ood"] = ["random_suffix"]  # ood: harmful only
    with pytest.raises(DataError, match="split 'ood' has only harmful rows"):
        build_dataset(dataset_config(cfg), tmp_path / "o")


def test_empty_prompt_is_an_error(tmp_path):
    cfg = tiny_config(tmp_path)
    write_jsonl(tmp_path / "good.jsonl", ["Fine", "   "])
    with pytest.raises(DataError, match="empty prompt"):
        build_dataset(dataset_config(cfg), tmp_path / "o")
    write_jsonl(tmp_path / "good.jsonl", ["Fine", '"?"'])
    with pytest.raises(DataError, match="empty after normalisation"):
        build_dataset(dataset_config(cfg), tmp_path / "o")


@pytest.mark.parametrize(
    "change, match",
    [
        ({"transforms": {"train": ["nope"]}}, "unknown transformation 'nope'"),
        ({"transforms": {"train": ["all_caps"], "ood": ["all_caps"]}}, "both transforms.train"),
        ({"templates": {"roleplay": "x.txt"}}, "shadows a built-in"),
        ({"val_fraction": 1.5}, "val_fraction"),
        ({"colour": 1}, "colour"),
    ],
)
def test_config_errors(tmp_path, change, match):
    with pytest.raises(ConfigError, match=match):
        dataset_config({**tiny_config(tmp_path), **change})


def test_load_yaml_and_missing_dir(tmp_path):
    cfg_path = tmp_path / "d.yaml"
    cfg_path.write_text("sources:\n  - {name: b, kind: builtin, label: harmful}\nseed: 3\n")
    assert load_dataset_config(cfg_path).seed == 3
    assert load_dataset_config(None) == default_dataset_config()
    with pytest.raises(FormatError, match="not found"):
        load_dataset_dir(tmp_path / "none")


def test_default_dataset_builds_offline(tmp_path):
    summary = build_dataset(default_dataset_config(), tmp_path / "o")
    stats = summary.sources
    assert stats["builtin_harmful"]["kept"] >= 300 and stats["builtin_harmless"]["kept"] >= 300
    for split in SPLITS:
        assert summary.splits[split]["harmful"] > 0 and summary.splits[split]["harmless"] > 0
    assert "ood" in summary.table and "(all)" in summary.table
    saved = json.loads(summary.summary_path.read_text())
    assert saved["splits"] == summary.splits and saved["n_rows"] == summary.n_rows
    rows = load_dataset_dir(tmp_path / "o")
    assert len(rows) == summary.n_rows
    by_id, by_text = splits_of(rows)
    assert all(len(s) == 1 for s in [*by_id.values(), *by_text.values()])


def test_shared_config_builds(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the config's paths are relative to the repository root
    summary = build_dataset(load_dataset_config("configs/dataset-shared.yaml"), tmp_path / "o")
    assert 2000 <= summary.n_rows <= 4000
    assert summary.sources["harmbench"]["kept"] == 200
    assert summary.sources["alpaca"]["ending_in_question_mark_after"] == 0
    for split in SPLITS:
        assert summary.splits[split]["harmful"] > 0 and summary.splits[split]["harmless"] > 0
    rows = load_dataset_dir(tmp_path / "o")
    pliny = next(r for r in rows if r.transform == "pliny_google")
    assert "{Z}" in pliny.text and "{prompt}" not in pliny.text and pliny.split == "ood"
    assert {r.transform for r in rows if r.split != "ood"} == {
        "none", "aim", "gcg_suffix", "roleplay", "how_many_words", "ignore_one_instruction"
    }  # fmt: skip


def test_jailbreaks_on_harmless_wrap_both_classes(tmp_path):
    """With jailbreaks_on_harmless, every jailbreak wrapper occurs in both classes (harmless
    prompts keep label 0), in train and in ood, so a wrapper alone says nothing of the label."""
    build_dataset(dataset_config(tiny_config(tmp_path)), tmp_path / "off")
    off = load_dataset_dir(tmp_path / "off")
    assert {r.label for r in off if r.transform == "roleplay"} == {1}
    build_dataset(
        dataset_config(tiny_config(tmp_path, jailbreaks_on_harmless=True)), tmp_path / "on"
    )
    rows = load_dataset_dir(tmp_path / "on")
    for split, wrapper in (("train", "roleplay"), ("ood", "random_suffix")):
        labels = {r.label for r in rows if r.split == split and r.transform == wrapper}
        assert labels == {0, 1}, (split, wrapper)
    good = [r for r in rows if r.source == "good" and r.transform in ("roleplay", "random_suffix")]
    assert good and all(r.label == 0 for r in good)
    assert all(r.label == 0 for r in rows if r.transform in {"how_many_words", "all_caps"})
    by_id, by_text = splits_of(rows)
    assert all(len(s) == 1 for s in by_id.values()) and all(len(s) == 1 for s in by_text.values())
