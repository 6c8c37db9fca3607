"""Block kinds of scripts/regenerate_docs.py.

A kind is a function `(run_dir: Path, params: dict[str, str]) -> Block`, registered by name
with `@kind("name")`. It reads only the run's output files and returns the block's markdown
text and any files to copy (figures). A kind raises `BlockError` (one line) when the run is
there but does not hold what the block needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class BlockError(Exception):
    """A block that cannot be built from an existing run directory (one line)."""


@dataclass
class Block:
    text: str
    # (source file in the run, destination relative to the doc's directory)
    copies: list[tuple[Path, str]] = field(default_factory=list)


KindFn = Callable[[Path, dict[str, str]], Block]
KINDS: dict[str, KindFn] = {}


def kind(name: str) -> Callable[[KindFn], KindFn]:
    def register(fn: KindFn) -> KindFn:
        if name in KINDS:
            raise ValueError(f"block kind {name!r} registered twice")
        KINDS[name] = fn
        return fn

    return register


_JSON_CACHE: dict[Path, Any] = {}


def read_json(path: Path) -> Any:
    """A run's JSON file, read once per process."""
    path = path.resolve()
    if path not in _JSON_CACHE:
        if not path.is_file():
            raise BlockError(f"{path} not found")
        try:
            _JSON_CACHE[path] = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise BlockError(f"{path} is not valid JSON: {err}") from None
    return _JSON_CACHE[path]


def clear_cache() -> None:
    _JSON_CACHE.clear()


def need(params: dict[str, str], name: str) -> str:
    if name not in params:
        raise BlockError(f"missing parameter {name}=")
    return params[name]


# Register the kinds.
from . import figure, interp, probe, sweep  # noqa: E402, F401
