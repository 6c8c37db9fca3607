"""Run the stages of a study in order, skipping the finished ones.

One line per stage: its number, name, what happened (ran, or reused) and how long it took, then
what it wrote. Stages keep their own progress bars. `from_stage` re-runs that stage and every
later one even when their records say they are finished.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saeprobe.errors import ConfigError
from saeprobe.io_utils import atomic_write_json
from saeprobe.study import cache
from saeprobe.study.config import StudyConfig
from saeprobe.study.context import StudyContext
from saeprobe.study.stages import STAGES, Stage


@dataclass
class StudySummary:
    out: Path
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def report(self) -> Path:
        return self.out / "report.html"


def stage_names() -> list[str]:
    return [s.name for s in STAGES]


def _check_from(from_stage: str | None) -> int:
    if from_stage is None:
        return len(STAGES)
    names = stage_names()
    if from_stage not in names:
        raise ConfigError(f"--from {from_stage!r} is not a stage; choose from {', '.join(names)}")
    return names.index(from_stage)


def run_study(
    cfg: StudyConfig,
    out: str | Path,
    from_stage: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> StudySummary:
    out = Path(out)
    first_forced = _check_from(from_stage)
    ctx = StudyContext(cfg=cfg, out=out, progress=progress, log=log)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "study_config.json", json.loads(cfg.model_dump_json()))
    summary = StudySummary(out=out)
    keys: dict[str, str] = {}
    active = [s for s in STAGES if s.enabled(cfg)]
    for number, stage in enumerate(active, start=1):
        key = cache.stage_key(
            stage.name, stage.settings(cfg), [keys[d] for d in stage.reads if d in keys]
        )
        keys[stage.name] = key
        head = f"[{number}/{len(active)}] {stage.name}"
        record = cache.finished(out, stage.name, key)
        forced = STAGES.index(stage) >= first_forced
        if record is not None and not forced and not stage.always:
            log(f"{head}: reused ({record['seconds']:.0f} s when it ran)")
            ctx.results[stage.name] = record["summary"]
        else:
            record = _run_stage(stage, ctx, key, head)
        summary.stages[stage.name] = record
    return summary


def _run_stage(stage: Stage, ctx: StudyContext, key: str, head: str) -> dict[str, Any]:
    cache.forget(ctx.out, stage.name)
    ctx.log(f"{head}: running")
    t0 = time.perf_counter()
    result = stage.run(ctx)
    seconds = time.perf_counter() - t0
    cache.write_record(ctx.out, stage.name, key, seconds, result)
    ctx.results[stage.name] = result
    wrote = result.get("wrote")
    ctx.log(f"{head}: done in {seconds:.0f} s" + (f"; wrote {wrote}" if wrote else ""))
    return {"key": key, "seconds": round(seconds, 2), "summary": result}


def run_from_config(
    config_path: str | Path,
    out: str | Path | None,
    from_stage: str | None = None,
    dry_run: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> StudySummary | None:
    """Validate the whole config and every file it names, then plan or run the study."""
    from saeprobe.study.config import load_study_config
    from saeprobe.study.files import check_files, missing_files
    from saeprobe.study.plan import plan_lines

    cfg = load_study_config(config_path)
    _check_from(from_stage)
    if dry_run:
        for line in plan_lines(cfg):
            log(line)
        for key, path in missing_files(cfg):
            log(f"missing before a real run: {key}: {path}")
        log("dry run: nothing loaded, nothing written")
        return None
    check_files(cfg)
    out = Path(out) if out is not None else Path("runs") / Path(config_path).stem
    summary = run_study(cfg, out, from_stage=from_stage, progress=progress, log=log)
    log(f"report: {summary.report}")
    return summary


def quickstart_config() -> Path:
    """configs/quickstart.yaml as shipped inside the package (it works from any directory)."""
    from importlib.resources import files

    return Path(str(files("saeprobe.study") / "quickstart.yaml"))


def run_quickstart(
    out: str | Path = "runs/quickstart",
    from_stage: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> StudySummary:
    from saeprobe.report import headline_table

    summary = run_from_config(quickstart_config(), out, from_stage, False, progress, log)
    results = json.loads((summary.out / "results.json").read_text(encoding="utf-8"))
    log("")
    log(headline_table(results["headline"]["rows"]))
    return summary
