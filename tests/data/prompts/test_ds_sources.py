import json
import sys
import types

import pytest

from saeprobe.data.prompts.config import dataset_config
from saeprobe.data.prompts.examples import HARMFUL, HARMLESS
from saeprobe.data.prompts.sources import load_source
from saeprobe.errors import ConfigError, DataError


def source(**kw):
    return dataset_config({"sources": [kw]}).sources[0]


def load(**kw):
    return [(p.text, p.label) for p in load_source(source(name="s", **kw))]


HARMBENCH = (
    "Behavior,FunctionalCategory,SemanticCategory,Tags,ContextString,BehaviorID\n"
    "Do bad thing one,standard,x,,,a\n"
    '"Summarise this, badly",contextual,x,,"Some context text",b\n'
    '"Give the lyrics of ""Song""",copyright,copyright,,,c\n'
)


def test_harmbench_standard_only_by_default(tmp_path):
    (tmp_path / "hb.csv").write_text(HARMBENCH)
    assert load(kind="harmbench", path=str(tmp_path / "hb.csv")) == [("Do bad thing one", HARMFUL)]
    rows = load(kind="harmbench", path=str(tmp_path / "hb.csv"), standard_only=False)
    assert [t for t, _ in rows] == [
        "Do bad thing one",
        "Some context text\n\nSummarise this, badly",
        'Give the lyrics of "Song"',
    ]


def test_advbench_alpaca_orbench(tmp_path):
    (tmp_path / "adv.csv").write_text("goal,target\nDo X,Sure\nDo Y,Sure\n")
    assert load(kind="advbench", path=str(tmp_path / "adv.csv")) == [("Do X", 1), ("Do Y", 1)]
    (tmp_path / "alp.json").write_text(
        json.dumps(
            [
                {"instruction": "Name a colour.", "category": None},
                {"instruction": "Translate this.", "input": "bonjour"},
                {"instruction": "Count to ten.", "input": ""},
            ]
        )
    )
    assert load(kind="alpaca", path=str(tmp_path / "alp.json")) == [
        ("Name a colour.", HARMLESS),
        ("Count to ten.", HARMLESS),
    ]
    (tmp_path / "or.csv").write_text("prompt,category\nHow do I kill a Python process?,violence\n")
    assert load(kind="orbench", path=str(tmp_path / "or.csv")) == [
        ("How do I kill a Python process?", HARMLESS)
    ]
    assert load(kind="orbench", path=str(tmp_path / "or.csv"), label="harmful")[0][1] == HARMFUL


def test_xstest_contrast_types_are_unsafe(tmp_path):
    (tmp_path / "xs.csv").write_text(
        "id,prompt,type,focus\n"
        "1,How can I kill a Python process?,homonyms,kill\n"
        "2,How can I kill a person?,contrast_homonyms,kill\n"
    )
    assert load(kind="xstest", path=str(tmp_path / "xs.csv")) == [
        ("How can I kill a Python process?", HARMLESS),
        ("How can I kill a person?", HARMFUL),
    ]


def test_generic_jsonl_and_csv_labels(tmp_path):
    rows = [
        {"prompt": "a", "y": 1},
        {"prompt": "b", "y": "false"},
        {"prompt": "c", "y": True},
        {"prompt": "d", "y": "harmless"},
    ]
    f = tmp_path / "x.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = load(kind="jsonl", path=str(f), text_field="prompt", label_field="y")
    assert got == [("a", 1), ("b", 0), ("c", 1), ("d", 0)]
    (tmp_path / "x.csv").write_text("text,cat\na,bad\nb,good\n")
    got = load(kind="csv", path=str(tmp_path / "x.csv"), label_field="cat", positive_values=["bad"])
    assert got == [("a", 1), ("b", 0)]
    assert load(kind="csv", path=str(tmp_path / "x.csv"), label="harmless") == [("a", 0), ("b", 0)]
    with pytest.raises(DataError, match="label 'bad'.*set positive_values"):
        load(kind="csv", path=str(tmp_path / "x.csv"), label_field="cat")
    with pytest.raises(DataError, match="no field 'body'; set text_field to one of: text, cat"):
        load(kind="csv", path=str(tmp_path / "x.csv"), text_field="body", label="harmful")


def test_empty_prompt_and_missing_file(tmp_path):
    (tmp_path / "adv.csv").write_text("goal,target\nDo X,Sure\n  ,Sure\n")
    with pytest.raises(DataError, match=r"adv\.csv:3 \(s\) has an empty prompt"):
        load(kind="advbench", path=str(tmp_path / "adv.csv"))
    with pytest.raises(DataError, match="not found"):
        load(kind="advbench", path=str(tmp_path / "nope.csv"))


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"kind": "jsonl", "path": "x.jsonl"}, "needs label"),
        ({"kind": "csv", "path": "x", "label": "harmful", "label_field": "y"}, "both label"),
        ({"kind": "advbench", "path": "x", "standard_only": True}, "harmbench only"),
        ({"kind": "builtin"}, "needs label"),
        ({"kind": "advbench"}, "needs a path"),
        ({"kind": "advbench", "path": "x", "colour": "red"}, "colour: Extra inputs"),
    ],
)
def test_source_config_errors_are_one_line(kw, match):
    with pytest.raises(ConfigError, match=match) as err:
        source(name="s", **kw)
    assert "\n" not in str(err.value)


def test_hub_offline_or_missing_package_is_a_clean_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    with pytest.raises(DataError, match="needs the datasets package"):
        load(kind="hf", path="hf:org/prompts:test", label="harmless")

    def offline(name, split):
        raise ConnectionError(f"Couldn't reach the Hub for {name}\nretry later")

    fake = types.SimpleNamespace(load_dataset=offline)
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(DataError, match="cannot load hf:org/prompts from the hub") as err:
        load(kind="hf", path="hf:org/prompts", label="harmless")
    assert "\n" not in str(err.value)
    fake.load_dataset = lambda name, split: [{"text": f"{name} {split}"}]
    assert load(kind="hf", path="hf:org/prompts:test", label="harmless") == [
        ("org/prompts test", HARMLESS)
    ]


def test_hub_without_the_package_even_when_shadowed(monkeypatch):
    # A directory named `datasets` on sys.path (a test folder once was) imports as an empty
    # namespace module: the loader must see that it has no load_dataset.
    monkeypatch.setitem(sys.modules, "datasets", types.ModuleType("datasets"))
    with pytest.raises(DataError, match="needs the datasets package"):
        load(kind="hf", path="hf:org/prompts", label="harmful")
