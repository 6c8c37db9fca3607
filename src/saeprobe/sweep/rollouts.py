"""Chat data a sweep needs: the model's own rollouts, generated once and cached.

```yaml
rollouts:
  alpaca: {prompts: ../shared/data/alpaca_no_input.json, field: instruction, limit: 600}
stores:
  chat: {layer: 12, data: "rollouts:alpaca", max_tokens: 40000}
```

A store whose `data` is `rollouts:NAME` reads that entry's JSONL. Without an `out`, it lives in
$SAEPROBE_CACHE/rollouts under a name hashing its settings and the prompt file's size and
modification time. An interrupted generation resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import Field

from saeprobe.cache import cache_root
from saeprobe.data.rollouts import RolloutsConfig, partial_path, run_rollouts

PREFIX = "rollouts:"


class RolloutsSpec(RolloutsConfig):
    out: Path | None = Field(None, description="where the JSONL goes; default the cache")
    progress: bool = True


def rollouts_name(data: str) -> str | None:
    return data[len(PREFIX) :] if data.startswith(PREFIX) else None


def rollouts_path(name: str, spec: RolloutsSpec) -> Path:
    if spec.out is not None:
        return spec.out
    settings = spec.model_dump(mode="json", exclude={"out", "progress", "device"})
    prompts = Path(spec.prompts)
    if prompts.is_file():
        stat = prompts.stat()
        settings["prompts_stamp"] = [str(prompts.resolve()), stat.st_size, int(stat.st_mtime)]
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return cache_root() / "rollouts" / f"{name}-{digest}.jsonl"


def ensure_rollouts(name: str, spec: RolloutsSpec, progress: bool, log) -> Path:
    """The rollouts file of entry `name`, generated (or finished) first if need be."""
    out = rollouts_path(name, spec)
    if out.is_file() and not partial_path(out).exists():
        return out
    log(f"rollouts {name}: generating into {out}")
    cfg = RolloutsConfig(**spec.model_dump(exclude={"out", "progress"}), out=out,
                         progress=progress and spec.progress)  # fmt: skip
    summary = run_rollouts(cfg, resume=partial_path(out).exists())
    log(summary.line())
    return out
