"""What every stage of a study sees: the config, where outputs go, and earlier stages' results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saeprobe.study.config import StudyConfig


@dataclass
class StudyContext:
    cfg: StudyConfig
    out: Path
    progress: bool
    log: Callable[[str], None]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    @property
    def sweep_dir(self) -> Path:
        return self.out / "sweep"

    @property
    def dataset_dir(self) -> Path:
        return self.out / "dataset"

    @property
    def probe_dir(self) -> Path:
        return self.out / "probe"
