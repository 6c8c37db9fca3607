"""Validate a whole study config before any work starts, with errors that name the key.

pydantic already knows every allowed key. What it does not do is say which key was meant when a
key is misspelt, so `extra_forbidden` errors get the nearest allowed key of the model at that
location ("sweep.phases.0.gird: unknown key; did you mean 'grid'?").
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from saeprobe.errors import ConfigError


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (unwrapping Optional, list, dict, Union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    origin = typing.get_origin(annotation)
    if origin is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            found += _models_in(arg)
    return found


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that owns the mapping at `loc` (list indices and dict keys skipped)."""
    current: list[type[BaseModel]] = [root]
    for part in loc:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        for model in current:
            info = model.model_fields.get(str(part))
            if info is not None:
                nxt += _models_in(info.annotation)
        if nxt:
            current = nxt
        # else: a dict key (e.g. a store's name) or a union tag; stay on the same models
    return current[0] if current else None


def suggest_key(root: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """The allowed key nearest to the misspelt last element of `loc`, if one is close."""
    owner = _model_at(root, loc[:-1])
    if owner is None:
        return None
    names = list(owner.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    return close[0] if close else None


def describe(err: ValidationError, root: type[BaseModel], what: str) -> str:
    """One line for the first problem, with the dotted key and a suggestion for typos."""
    # A misspelt key also makes the intended key "missing": name the typo, which is the cause.
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = tuple(first["loc"])
    where = ".".join(str(p) for p in loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        near = suggest_key(root, loc)
        hint = f"; did you mean {near!r}?" if near else "; remove it"
        message = f"{what}: unknown key {where}{hint}"
    else:
        message = f"{what}: {where}: {first['msg'].removeprefix('Value error, ')}"
    more = len(errors) - 1
    return message + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def validate(root: type[BaseModel], data: dict[str, Any], what: str) -> BaseModel:
    try:
        return root.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe(err, root, what)) from None
