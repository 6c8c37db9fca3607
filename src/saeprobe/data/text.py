"""Text corpora from files or the Hugging Face hub, as an iterator of documents.

.txt      one document per line (blank lines skipped)
.jsonl    one JSON object per line; `field` (default "text") holds the document
.json     a JSON list of objects (`field`, default "text") or of strings
.csv      `field` names the column (required)
.parquet  `field` names the column (default "text"); needs pyarrow
hf:NAME[:SPLIT[:FIELD]]   a hub dataset through `datasets`, when the hub is reachable
python-docs   the offline default corpus (see `default_corpus`)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

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
    reader = {
        ".txt": _txt,
        ".jsonl": _jsonl,
        ".json": _json,
        ".csv": _csv,
        ".parquet": _parquet,
    }[suffix]
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
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            yield line.rstrip("\n")


def _missing_field(path: Path, field: str, available) -> DataError:
    return DataError(
        f"{path} has no field {field!r}; pass --field with one of: {', '.join(map(str, available))}"
    )


def _jsonl(path: Path, field: str | None) -> Iterator[str]:
    key = field or "text"
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"{path}:{i} is not valid JSON; fix or remove that line") from None
            if not isinstance(row, dict) or key not in row:
                raise _missing_field(path, key, row.keys() if isinstance(row, dict) else [])
            yield str(row[key])


def _json(path: Path, field: str | None) -> Iterator[str]:
    key = field or "text"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(rows, list):
        raise DataError(f"{path} must hold a JSON list of records; use .jsonl for one per line")
    for row in rows:
        if isinstance(row, str):
            yield row
        elif isinstance(row, dict) and key in row:
            yield "" if row[key] is None else str(row[key])
        else:
            raise _missing_field(path, key, row.keys() if isinstance(row, dict) else [])


def _csv(path: Path, field: str | None) -> Iterator[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        if field is None or field not in columns:
            if field is None:
                raise DataError(f"{path} is CSV; pass --field with one of: {', '.join(columns)}")
            raise _missing_field(path, field, columns)
        for row in reader:
            yield row[field]


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
