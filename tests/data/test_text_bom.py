"""Files saved by spreadsheet programs start with a UTF-8 byte-order mark; it is not part of the
first column's name or the first document."""

import pytest

from saeprobe.data.prompts.config import dataset_config
from saeprobe.data.prompts.examples import HARMFUL
from saeprobe.data.prompts.sources import load_source
from saeprobe.data.text import iter_texts

BOM = "\ufeff"


def test_csv_with_a_bom_reads_its_first_column(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(BOM + "body,other\nfirst doc,1\nsecond doc,2\n", encoding="utf-8")
    assert list(iter_texts(str(path), "body")) == ["first doc", "second doc"]


@pytest.mark.parametrize(
    "name, body",
    [("d.jsonl", '{"text": "a doc"}\n'), ("d.json", '["a doc"]'), ("d.txt", "a doc\n")],
)
def test_other_text_formats_drop_the_bom_too(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(BOM + body, encoding="utf-8")
    assert list(iter_texts(str(path))) == ["a doc"]


def test_prompt_source_csv_with_a_bom(tmp_path):
    path = tmp_path / "adv.csv"
    path.write_text(BOM + "goal,target\nDo X,Sure\n", encoding="utf-8")
    src = dataset_config({"sources": [{"name": "s", "kind": "advbench", "path": str(path)}]})
    assert [(p.text, p.label) for p in load_source(src.sources[0])] == [("Do X", HARMFUL)]
