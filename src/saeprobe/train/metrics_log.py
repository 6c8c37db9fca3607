"""Training metrics: JSONL on disk, optionally mirrored to wandb when it is installed.

Every line is strict JSON: non-finite floats (NaN, inf) are written as null, since `NaN` is not
JSON and other readers reject it. A crash can cut the last line short; resuming drops lines that
do not parse (with a warning) instead of failing.
"""

from __future__ import annotations

import json
import math
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
                kept = _lines_up_to(path, resume_step)
                atomic_write_text(path, "".join(line + "\n" for line in kept))
                self._fh = open(path, "a", encoding="utf-8")
            else:
                self._fh = open(path, "w", encoding="utf-8")
        self._wandb = _start_wandb(wandb_project, wandb_config) if wandb_project else None

    def log(self, record: dict[str, Any]) -> None:
        if self._fh is not None:
            self._fh.write(json.dumps(_finite(record), allow_nan=False) + "\n")
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


def _finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None (null in JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _lines_up_to(path: Path, step: int) -> list[str]:
    """The log's lines for steps <= `step`; lines that do not parse are dropped with a warning
    (a crash mid-write truncates the last one)."""
    kept, bad = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line)
    if bad:
        warnings.warn(
            f"{path}: dropped {bad} unreadable line{'s' if bad > 1 else ''} (a crash cut the log "
            "short); the resumed run rewrites those steps",
            stacklevel=3,
        )
    return kept


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
