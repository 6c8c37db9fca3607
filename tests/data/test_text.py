import json

import pytest

from saeprobe.data.text import iter_texts
from saeprobe.errors import DataError


def test_txt_one_document_per_line(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("first doc\n\nsecond doc\n")
    assert list(iter_texts(str(f))) == ["first doc", "second doc"]


def test_jsonl_default_and_chosen_field(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text(
        json.dumps({"text": "a", "body": "x"})
        + "\n"
        + json.dumps({"text": "b", "body": "y"})
        + "\n"
    )
    assert list(iter_texts(str(f))) == ["a", "b"]
    assert list(iter_texts(str(f), field="body")) == ["x", "y"]


def test_csv_needs_a_field(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("goal,target\nDo X,Sure\nDo Y,Sure\n")
    assert list(iter_texts(str(f), field="goal")) == ["Do X", "Do Y"]
    with pytest.raises(DataError, match="pass --field with one of: goal, target"):
        list(iter_texts(str(f)))


@pytest.mark.parametrize("suffix, body", [(".jsonl", '{"body": "x"}\n'), (".csv", "body\nx\n")])
def test_missing_field_names_the_available_ones(tmp_path, suffix, body):
    f = tmp_path / f"c{suffix}"
    f.write_text(body)
    with pytest.raises(DataError, match="no field 'text'.*body"):
        list(iter_texts(str(f), field="text"))


def test_missing_empty_and_unsupported_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        list(iter_texts(str(tmp_path / "nope.txt")))
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DataError, match="no documents"):
        list(iter_texts(str(tmp_path / "empty.txt")))
    (tmp_path / "x.docx").write_text("hi")
    with pytest.raises(DataError, match="unsupported data format"):
        list(iter_texts(str(tmp_path / "x.docx")))


def test_bad_json_line(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"text": "ok"}\n{broken\n')
    with pytest.raises(DataError, match="c.jsonl:2 is not valid JSON"):
        list(iter_texts(str(f)))


def test_shared_gutenberg_corpus_reads(shared_data):
    path = shared_data / "pretrain_text" / "gutenberg_books_chunks.jsonl"
    docs = []
    for text in iter_texts(str(path)):
        docs.append(text)
        if len(docs) == 5:
            break
    assert len(docs) == 5 and all(len(d) > 100 for d in docs)
