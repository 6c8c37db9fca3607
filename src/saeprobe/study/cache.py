"""Stage records: what makes a finished stage reusable.

Each stage's key hashes its own settings and the keys of the stages it reads, so changing a
setting re-runs that stage and everything downstream of it, and nothing upstream. A stage is
finished when `stages/<name>.json` holds its current key; the record is written only after the
stage's outputs are in place, so a killed stage simply runs again (and the stages that resume
internally, such as the sweep, pick up where they stopped).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from saeprobe.io_utils import atomic_write_json

# Bump when a stage's outputs change meaning, so old study directories are not reused.
FORMAT_VERSION = 1


def stage_key(name: str, settings: Any, upstream: list[str]) -> str:
    payload = {"stage": name, "settings": settings, "upstream": upstream, "v": FORMAT_VERSION}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def record_path(out: Path, name: str) -> Path:
    return out / "stages" / f"{name}.json"


def finished(out: Path, name: str, key: str) -> dict[str, Any] | None:
    """The stage's record when it finished with this key, else None."""
    path = record_path(out, name)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return record if record.get("key") == key else None


def write_record(out: Path, name: str, key: str, seconds: float, summary: dict[str, Any]) -> None:
    atomic_write_json(
        record_path(out, name), {"key": key, "seconds": round(seconds, 2), "summary": summary}
    )


def forget(out: Path, name: str) -> None:
    record_path(out, name).unlink(missing_ok=True)
