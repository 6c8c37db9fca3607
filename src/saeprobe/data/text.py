"""Text corpora from files or the Hugging Face hub, as an iterator of documents.

.txt      one document per line (blank lines skipped)
.jsonl    one JSON object per line; `field` (default "text") holds the document
.json     a JSON list of objects (`field`, default "text") or of strings
.csv      `field` names the column (required)
.parquet  `field` names the column (default "text"); needs pyarrow
hf:NAME[:SPLIT[:FIELD]]   a hub dataset through `datasets`, when the hub is reachable
python-docs   the offline default corpus (see `default_corpus`)

Files are UTF-8, with or without the byte-order mark that spreadsheet programs write.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from saeprobe.data.default_corpus import NAME as DEFAULT_CORPUS
from saeprobe.data.default_corpus import iter_default_corpus
from saeprobe.errors import DataError

SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".parquet")


def iter_texts(source: str, field: str | None = None) -> Iterator[str]:
    """Yield the non-empty documents of `source`; raise DataError with a fix if it cannot."""
    if source == DEFAULT_CORPUS:
        yield from iter_default_corpus()
        return
    if source.startswith("hf:"):
        yield from _iter_hub(source, field)
        return
    path = Path(source)
    if not path.is_file():
        raise DataError(f"data file {path} not found; check the path passed to --data")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(
            f"{path}: unsupported data format {suffix or '(none)'}; use one of {', '.join(SUFFIXES)}"
        )
    reader = {".txt": _txt, ".parquet": _parquet}.get(suffix, _field_texts)
    n = 0
    try:
        for text in reader(path, field):
            if text and text.strip():
                n += 1
                yield text
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; convert it or pass another file") from None
    if n == 0:
        raise DataError(f"{path} holds no documents; pass a non-empty data file")


def _txt(path: Path, field: str | None) -> Iterator[str]:
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            yield line.rstrip("\n")


def _missing_field(path: Path, field: str, available) -> DataError:
    return DataError(
        f"{path} has no field {field!r}; pass --field with one of: {', '.join(map(str, available))}"
    )


def iter_records(path: Path, fmt: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, row) for each record of a jsonl, json (list of objects) or csv file; the
    format is `fmt` or else the file's suffix."""
    fmt = fmt or path.suffix.lower().lstrip(".")
    readers = {"jsonl": _jsonl_records, "json": _json_records, "csv": _csv_records}
    if fmt not in readers:
        raise DataError(f"{path}: records need jsonl, json or csv (got {fmt or 'no suffix'})")
    return readers[fmt](path)


def _jsonl_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with open(path, encoding="utf-8-sig") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"{path}:{i} is not valid JSON; fix or remove that line") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{i} is not a JSON object; write one object per line")
            yield f"{path}:{i}", row


def _json_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(rows, list):
        raise DataError(f"{path} must hold a JSON list of records; use .jsonl for one per line")
    for i, row in enumerate(rows):
        # A list of plain strings is a list of texts.
        row = {"text": row} if isinstance(row, str) else row
        if not isinstance(row, dict):
            raise DataError(f"{path} item {i} is not a JSON object with named fields")
        yield f"{path}[{i}]", row


def _csv_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            yield f"{path}:{reader.line_num}", row


def _field_texts(path: Path, field: str | None) -> Iterator[str]:
    """The `field` (default "text") of every record; CSV needs the field named."""
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            columns = csv.DictReader(fh).fieldnames or []
        if field is None:
            raise DataError(f"{path} is CSV; pass --field with one of: {', '.join(columns)}")
        if field not in columns:
            raise _missing_field(path, field, columns)
    key = field or "text"
    for _, row in iter_records(path):
        if key not in row:
            raise _missing_field(path, key, row.keys())
        yield "" if row[key] is None else str(row[key])


def _parquet(path: Path, field: str | None) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("reading .parquet needs pyarrow; pip install pyarrow") from None
    key = field or "text"
    table = pq.read_table(path)
    if key not in table.column_names:
        raise _missing_field(path, key, table.column_names)
    for value in table.column(key).to_pylist():
        yield "" if value is None else str(value)


def _iter_hub(source: str, field: str | None) -> Iterator[str]:
    parts = source[3:].split(":")
    name, split = parts[0], parts[1] if len(parts) > 1 and parts[1] else "train"
    key = field or (parts[2] if len(parts) > 2 else "text")
    try:
        import datasets
    except ImportError:
        datasets = None
    if not hasattr(datasets, "load_dataset"):  # missing, or shadowed by a folder named datasets
        raise DataError(f"{source} needs the datasets package; pip install datasets")
    try:
        ds = datasets.load_dataset(name, split=split, streaming=True)
    except Exception as err:  # noqa: BLE001 -- offline, unknown name, bad split: many types
        raise DataError(
            f"cannot load {source} from the hub ({str(err).splitlines()[0][:100]}); use a local "
            "file or check the name and your network"
        ) from None
    for row in ds:
        if key not in row:
            raise DataError(f"{source} has no field {key!r}; pass one of: {', '.join(row)}")
        yield str(row[key])
