"""Training metrics: JSONL on disk, optionally mirrored to wandb when it is installed."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from saeprobe.io_utils import atomic_write_text


class MetricsLogger:
    def __init__(
        self,
        path: Path | None,
        resume_step: int | None = None,
        wandb_project: str | None = None,
        wandb_config: dict[str, Any] | None = None,
    ):
        self.path = path
        self._fh = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if resume_step is not None and path.exists():
                # Lines written after the checkpoint we resume from would be duplicated.
                kept = [
                    line
                    for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resume_step
                ]
                atomic_write_text(path, "".join(line + "\n" for line in kept))
                self._fh = open(path, "a", encoding="utf-8")
            else:
                self._fh = open(path, "w", encoding="utf-8")
        self._wandb = _start_wandb(wandb_project, wandb_config) if wandb_project else None

    def log(self, record: dict[str, Any]) -> None:
        if self._fh is not None:
            self._fh.write(json.dumps(record) + "\n")
            self._fh.flush()
        if self._wandb is not None:
            run = record.get("run", "")
            self._wandb.log(
                {f"{run}/{k}": v for k, v in record.items() if k not in ("run", "step")},
                step=record.get("step"),
            )

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def _start_wandb(project: str, config: dict[str, Any] | None):
    try:
        import wandb
    except ImportError:
        warnings.warn(
            "wandb is not installed; metrics go to the JSONL file only (pip install wandb)",
            stacklevel=3,
        )
        return None
    return wandb.init(project=project, config=config or {})
