"""YAML config files: one mapping of settings, with one-line errors for every way to get it wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from saeprobe.errors import ConfigError


def load_yaml_config(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; check the path") from None
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0]
        raise ConfigError(
            f"config file {path} is not valid YAML ({first}); fix the syntax"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return data
