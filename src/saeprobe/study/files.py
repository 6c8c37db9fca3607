"""Every file a study config names, checked before any work starts.

A missing file found an hour into a study costs the hour; found here it costs nothing. Names
that are not files (the built-in corpus and prompts, `rollouts:NAME`, `hf:` datasets) are left
to the stages that read them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from saeprobe.errors import ConfigError
from saeprobe.study.config import StudyConfig

NOT_FILES = ("python-docs", "builtin-harmless", "default")


def _is_file_name(value: str | None) -> bool:
    return bool(value) and value not in NOT_FILES and not value.startswith(("rollouts:", "hf:"))


def referenced_files(cfg: StudyConfig) -> Iterator[tuple[str, Path]]:
    """(config key, path) for every file the study will read."""
    sweep = cfg.sweep
    for name, spec in sweep.rollouts.items():
        if _is_file_name(spec.prompts):
            yield f"sweep.rollouts.{name}.prompts", Path(spec.prompts)
    for name, store in sweep.stores.items():
        if _is_file_name(store.data):
            yield f"sweep.stores.{name}.data", Path(store.data)
        for i, mix in enumerate(store.mix):
            if _is_file_name(mix.data):
                yield f"sweep.stores.{name}.mix.{i}.data", Path(mix.data)
            if _is_file_name(mix.dataset):
                yield f"sweep.stores.{name}.mix.{i}.dataset", Path(mix.dataset)
    if cfg.dataset is not None:
        for i, source in enumerate(cfg.dataset.sources):
            if source.kind not in ("builtin", "hf"):
                for path in source.paths:
                    yield f"dataset.sources.{i}.path ({source.name})", path
        for name, template in cfg.dataset.templates.items():
            yield f"dataset.templates.{name}", Path(template)
    for name, path in cfg.probe.extra_saes.items():
        yield f"probe.extra_saes.{name}", path


def missing_files(cfg: StudyConfig) -> list[tuple[str, Path]]:
    return [(key, path) for key, path in referenced_files(cfg) if not path.exists()]


def check_files(cfg: StudyConfig) -> None:
    for key, path in missing_files(cfg)[:1]:
        raise ConfigError(
            f"{key}: {path} does not exist (relative paths resolve against {Path.cwd()}); "
            "fix the path or run from the directory the config expects"
        )
