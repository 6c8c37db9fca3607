"""The metrics JSONL: strict JSON on every line, and a log cut short by a crash still resumes."""

import json
import math

import pytest

from saeprobe.train.metrics_log import MetricsLogger


def _strict(line: str):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_non_finite_values_are_written_as_null(tmp_path):
    path = tmp_path / "m.jsonl"
    log = MetricsLogger(path)
    log.log({"step": 1, "loss": float("nan"), "auxk": float("inf"), "l0": -math.inf, "fvu": 0.5})
    log.close()
    (line,) = path.read_text(encoding="utf-8").splitlines()
    assert _strict(line) == {"step": 1, "loss": None, "auxk": None, "l0": None, "fvu": 0.5}


def test_resume_survives_a_truncated_last_line(tmp_path):
    path = tmp_path / "m.jsonl"
    lines = [json.dumps({"step": s, "loss": 1.0 / s}) for s in (1, 2, 3)]
    path.write_text("\n".join(lines) + '\n{"step": 4, "lo', encoding="utf-8")  # crash mid-write
    with pytest.warns(UserWarning, match="1 unreadable line"):
        log = MetricsLogger(path, resume_step=2)
    log.log({"step": 3, "loss": 0.25})
    log.close()
    steps = [_strict(line)["step"] for line in path.read_text(encoding="utf-8").splitlines()]
    assert steps == [1, 2, 3]
