"""Prompt sources: read (text, label) pairs from benchmark files, generic tables, or the hub.

Each loader yields `RawPrompt`s in file order. Normalisation, deduplication, the seeded `limit`
and base ids are applied afterwards by `build.py`, the same way for every source. Errors are
one-line `DataError`s that name the file and the fix, in the style of `saeprobe.data.text`.

Kinds and their defaults (any default can be overridden in the config):

| kind      | format            | text column   | label                                        |
|-----------|-------------------|---------------|----------------------------------------------|
| harmbench | CSV               | Behavior      | harmful; FunctionalCategory == standard only |
| advbench  | CSV               | goal          | harmful                                      |
| alpaca    | JSON list / JSONL | instruction   | harmless; rows with a non-empty `input` skipped |
| xstest    | CSV               | prompt        | column `type`: contrast_* = harmful          |
| orbench   | CSV               | prompt        | harmless ("seemingly toxic" prompts)         |
| jsonl/csv | JSONL / CSV       | text          | `label` or `label_field`                     |
| hf        | hf:NAME[:SPLIT]   | text          | `label` or `label_field`                     |
| builtin   | (none)            | -             | `label` picks our synthetic set              |
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saeprobe.data.prompts.config import SourceConfig
from saeprobe.data.prompts.examples import HARMFUL, HARMLESS, LABELS
from saeprobe.data.text import iter_records
from saeprobe.errors import DataError

# Label values understood without positive_values/positive_prefix (compared lower-cased).
TRUE_VALUES = frozenset({"1", "true", "yes", "harmful", "unsafe", "positive"})
FALSE_VALUES = frozenset({"0", "false", "no", "harmless", "safe", "negative"})


@dataclass(frozen=True)
class RawPrompt:
    """A prompt as read; `where` ("file:row") locates it for error messages."""

    text: str
    label: int
    where: str


def load_source(src: SourceConfig) -> list[RawPrompt]:
    """All prompts of one source, in file order. Raises DataError on an empty prompt."""
    if src.kind == "builtin":
        from saeprobe.data.prompts.default_prompts import HARMFUL_PROMPTS, HARMLESS_PROMPTS

        prompts = HARMFUL_PROMPTS if src.label == "harmful" else HARMLESS_PROMPTS
        label = LABELS[src.label]  # type: ignore[index]
        return [RawPrompt(t, label, f"builtin:{i}") for i, t in enumerate(prompts)]
    if src.kind == "hf":
        records = _hub_records(str(src.path))
    else:
        records = (rec for path in src.paths for rec in _file_records(path, _format(src, path)))
    out = []
    for where, row in records:
        if src.kind == "harmbench":
            text = _harmbench_text(src, where, row)
            if text is None:
                continue
        elif src.kind == "alpaca" and str(row.get("input") or "").strip():
            continue  # the instruction only makes sense with its input text
        else:
            text = _field(src, where, row, src.text_field)
        if not text.strip():
            raise DataError(
                f"{where} ({src.name}) has an empty prompt in {src.text_field!r}; remove the row "
                "or point text_field at the right column"
            )
        out.append(RawPrompt(text, _label(src, where, row), where))
    if not out:
        raise DataError(f"source {src.name!r} yielded no prompts; check its path and filters")
    return out


def _format(src: SourceConfig, path: Path) -> str:
    if src.kind == "jsonl":
        return "jsonl"
    if src.kind == "alpaca":
        return "jsonl" if path.suffix.lower() == ".jsonl" else "json"
    return "csv"


def _field(src: SourceConfig, where: str, row: dict[str, Any], key: str | None) -> str:
    if key not in row:
        option = "label_field" if key == src.label_field else "text_field"
        raise DataError(
            f"{where} ({src.name}) has no field {key!r}; set {option} to one of: "
            f"{', '.join(map(str, row))}"
        )
    value = row[key]
    return "" if value is None else str(value)


def _label(src: SourceConfig, where: str, row: dict[str, Any]) -> int:
    if src.label_field is None:
        return LABELS[src.label]  # type: ignore[index]
    raw = row.get(src.label_field)
    value = _field(src, where, row, src.label_field).strip()
    if isinstance(raw, bool):
        value = str(raw).lower()
    if src.positive_values is not None:
        return HARMFUL if value in src.positive_values else HARMLESS
    if src.positive_prefix is not None:
        return HARMFUL if value.startswith(src.positive_prefix) else HARMLESS
    low = value.lower()
    if low in TRUE_VALUES:
        return HARMFUL
    if low in FALSE_VALUES:
        return HARMLESS
    raise DataError(
        f"{where} ({src.name}): label {value!r} in {src.label_field!r} is not 0/1, true/false or "
        "harmful/harmless; set positive_values (or positive_prefix) for this source"
    )


def _harmbench_text(src: SourceConfig, where: str, row: dict[str, Any]) -> str | None:
    """The behaviour, or None to skip the row. Contextual rows get their context prepended."""
    category = str(row.get("FunctionalCategory") or "").strip()
    if src.standard_only:
        if "FunctionalCategory" not in row:
            raise DataError(
                f"{where} ({src.name}) has no FunctionalCategory column; set standard_only: "
                "false or use kind csv"
            )
        if category != "standard":
            return None
    text = _field(src, where, row, src.text_field)
    context = str(row.get("ContextString") or "").strip()
    if category == "contextual" and context:
        return f"{context}\n\n{text}"
    return text


# --- file and hub readers -------------------------------------------------------------------


def _file_records(path: Path, fmt: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not path.is_file():
        raise DataError(f"data file {path} not found; check the source's path")
    try:
        yield from iter_records(path, fmt)
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; convert it or pass another file") from None


def _hub_records(source: str) -> Iterator[tuple[str, dict[str, Any]]]:
    spec = source.removeprefix("hf:")
    name, _, split = spec.partition(":")
    split = split or "train"
    try:
        import datasets
    except ImportError:
        datasets = None
    # Under pytest, tests/data/prompts/ can shadow the missing package as a namespace package.
    if datasets is None or not hasattr(datasets, "load_dataset"):
        raise DataError(f"{source} needs the datasets package; pip install datasets")
    try:
        ds = datasets.load_dataset(name, split=split)
    except Exception as err:  # noqa: BLE001 -- offline, unknown name, bad split: many types
        first = (str(err).splitlines() or [type(err).__name__])[0][:100]
        raise DataError(
            f"cannot load {source} from the hub ({first}); use a local file or check the name "
            "and your network"
        ) from None
    for i, row in enumerate(ds):
        yield f"{source}[{i}]", dict(row)
