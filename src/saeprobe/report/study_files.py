"""The study directory as the report reads it.

`saeprobe run` writes one folder per stage under the study directory. Only `study_config.json`
is required: every other part may be missing (the stage was disabled, or has not run yet), and
the report then says in the section what is left out. A part that exists but cannot be read
is an error, not a gap: a half-read stage would make the report quietly wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saeprobe.errors import DataError

STAGES = ("harvest", "sweep", "dataset", "probe", "latents", "autointerp", "debug", "report")


def read_json(path: Path) -> Any:
    """The parsed file, or a one-line DataError naming the file and the fix."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); re-run the stage "
            "that wrote it"
        ) from exc


def _optional_json(path: Path) -> Any:
    return read_json(path) if path.is_file() else None


@dataclass
class ProbeRun:
    """One pooling's probe results: the first pooling in probe/, others in pooling-<name>/."""

    pooling: str
    dir: Path
    results: dict[str, Any]


@dataclass
class Study:
    dir: Path
    config: dict[str, Any]
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    sweep_rows: list[dict[str, Any]] = field(default_factory=list)
    dataset_summary: dict[str, Any] | None = None
    probes: list[ProbeRun] = field(default_factory=list)
    autointerp: dict[str, Any] | None = None
    debug_findings: list[dict[str, Any]] | None = None
    debug_summary: dict[str, Any] | None = None

    @property
    def sweep_dir(self) -> Path:
        return self.dir / "sweep"

    @property
    def probe_dir(self) -> Path:
        return self.dir / "probe"

    @property
    def autointerp_dir(self) -> Path:
        return self.dir / "autointerp"

    @property
    def debug_dir(self) -> Path:
        return self.dir / "debug"

    @property
    def dataset_dir(self) -> Path:
        return self.dir / "dataset"

    @property
    def probe(self) -> dict[str, Any] | None:
        """The first pooling's results: the one the headline reads."""
        return self.probes[0].results if self.probes else None


def _probe_runs(probe_dir: Path) -> list[ProbeRun]:
    first = _optional_json(probe_dir / "results.json")
    if first is None:
        return []
    runs = [ProbeRun(str(first.get("config", {}).get("pooling", "first")), probe_dir, first)]
    for sub in sorted(probe_dir.glob("pooling-*/results.json")):
        pooling = sub.parent.name.removeprefix("pooling-")
        if pooling == runs[0].pooling:  # some probe runs also copy the first pooling here
            continue
        runs.append(ProbeRun(pooling, sub.parent, read_json(sub)))
    return runs


def _check_probe(results: dict[str, Any], path: Path) -> None:
    missing = [k for k in ("config", "results", "comparisons") if k not in results]
    if missing:
        raise DataError(
            f"{path} lacks {', '.join(missing)}: not a `saeprobe probe` results.json; "
            "re-run the probe stage (saeprobe run ... --from probe)"
        )


def load_study(study_dir: str | Path) -> Study:
    study_dir = Path(study_dir)
    config_path = study_dir / "study_config.json"
    if not study_dir.is_dir():
        raise DataError(f"study directory {study_dir} does not exist; run `saeprobe run` first")
    if not config_path.is_file():
        raise DataError(
            f"{study_dir} has no study_config.json: not a study directory; pass the --out "
            "directory of `saeprobe run` or `saeprobe quickstart`"
        )
    config = read_json(config_path)
    if not isinstance(config, dict):
        raise DataError(f"{config_path} must hold a JSON object; re-run `saeprobe run`")
    study = Study(dir=study_dir, config=config)
    for stage in STAGES:
        record = _optional_json(study_dir / "stages" / f"{stage}.json")
        if isinstance(record, dict):
            study.stages[stage] = record
    sweep = _optional_json(study.sweep_dir / "sweep.json")
    if sweep is not None:
        if not isinstance(sweep, dict) or not isinstance(sweep.get("rows"), list):
            raise DataError(
                f"{study.sweep_dir / 'sweep.json'} has no rows list; re-run the sweep stage"
            )
        study.sweep_rows = sweep["rows"]
    study.dataset_summary = _optional_json(study.dataset_dir / "summary.json")
    study.probes = _probe_runs(study.probe_dir)
    for run in study.probes:
        _check_probe(run.results, run.dir / "results.json")
    study.autointerp = _optional_json(study.autointerp_dir / "autointerp_sweep.json")
    _check_shape(
        study.autointerp, dict, study.autointerp_dir / "autointerp_sweep.json", "autointerp"
    )
    study.debug_findings = _optional_json(study.debug_dir / "findings.json")
    _check_shape(study.debug_findings, list, study.debug_dir / "findings.json", "debug")
    study.debug_summary = _optional_json(study.debug_dir / "summary.json")
    _check_shape(study.debug_summary, dict, study.debug_dir / "summary.json", "debug")
    _check_shape(study.dataset_summary, dict, study.dataset_dir / "summary.json", "dataset")
    return study


def _check_shape(value: Any, kind: type, path: Path, stage: str) -> None:
    if value is not None and not isinstance(value, kind):
        raise DataError(
            f"{path} holds a JSON {type(value).__name__}, not the {kind.__name__} the {stage} "
            f"stage writes; re-run it (saeprobe run ... --from {stage})"
        )
