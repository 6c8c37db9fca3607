"""`saeprobe run` end to end on a tiny study: every stage writes its outputs, a re-run reuses
them, `--from` and changed settings re-run exactly what depends on them, and a run killed
mid-sweep resumes to the same results."""

import json

import pytest
from study_helpers import tiny_study, write_study

from saeprobe.study.config import load_study_config
from saeprobe.study.runner import run_study
from saeprobe.train import trainer as trainer_module

STAGES = ["harvest", "sweep", "dataset", "probe", "latents", "autointerp", "debug", "report"]


def _quiet_run(cfg, out, **kw):
    lines: list[str] = []
    run_study(cfg, out, progress=False, log=lines.append, **kw)
    return lines


def _ran(lines):
    return [line.split("] ")[1].split(":")[0] for line in lines if ": done in" in line]


def _results(out):
    """Probe results without timings: what must not change when work is resumed or reused."""
    data = json.loads((out / "probe" / "results.json").read_text())
    return {k: data[k] for k in ("results", "comparisons", "reconstruction_delta", "ood_breakdown")}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    mp = pytest.MonkeyPatch()
    mp.setenv("SAEPROBE_CACHE", str(tmp / "cache"))
    cfg = load_study_config(write_study(tmp, tiny_study(tmp)))
    lines = _quiet_run(cfg, tmp / "out")
    yield tmp, cfg, lines
    mp.undo()


def test_every_stage_runs_once_and_writes_its_outputs(finished):
    tmp, _, lines = finished
    out = tmp / "out"
    assert _ran(lines) == STAGES
    for path in ("sweep/sweep.csv", "probe/results.json", "autointerp/autointerp_sweep.json",
                 "debug/findings.json", "report.html", "results.json"):  # fmt: skip
        assert (out / path).is_file(), path
    assert sorted(p.name for p in (out / "sweep" / "saes").iterdir()) == ["topk", "topk-ft"]
    assert {json.loads((out / "stages" / f"{s}.json").read_text())["key"] for s in STAGES}


def test_rerun_reuses_every_stage_but_the_report(finished, monkeypatch):
    tmp, cfg, _ = finished
    monkeypatch.setenv("SAEPROBE_CACHE", str(tmp / "cache"))
    before = _results(tmp / "out")
    lines = _quiet_run(cfg, tmp / "out")
    assert _ran(lines) == ["report"]
    assert sum("reused" in line for line in lines) == len(STAGES) - 1
    assert _results(tmp / "out") == before


def test_from_reruns_that_stage_and_later_ones(finished, monkeypatch):
    tmp, cfg, _ = finished
    monkeypatch.setenv("SAEPROBE_CACHE", str(tmp / "cache"))
    lines = _quiet_run(cfg, tmp / "out", from_stage="autointerp")
    assert _ran(lines) == ["autointerp", "debug", "report"]


def test_changed_probe_setting_reruns_the_probe_and_what_reads_it(finished, monkeypatch):
    tmp, cfg, _ = finished
    monkeypatch.setenv("SAEPROBE_CACHE", str(tmp / "cache"))
    changed = cfg.model_copy(update={"probe": cfg.probe.model_copy(update={"ks": [1, 2]})})
    lines = _quiet_run(changed, tmp / "out")
    assert _ran(lines) == ["probe", "report"]
    _quiet_run(cfg, tmp / "out")  # leave the shared directory as the other tests expect


def test_kill_mid_sweep_then_rerun_gives_identical_results(finished, tmp_path, monkeypatch):
    tmp, cfg, _ = finished
    monkeypatch.setenv("SAEPROBE_CACHE", str(tmp / "cache"))
    real_step = trainer_module.Trainer._train_step

    def dying(self, run, x, step, total_var):
        if step == 3:
            raise KeyboardInterrupt
        return real_step(self, run, x, step, total_var)

    monkeypatch.setattr(trainer_module.Trainer, "_train_step", dying)
    with pytest.raises(KeyboardInterrupt):
        _quiet_run(cfg, tmp_path / "out")
    done = {p.stem for p in (tmp_path / "out" / "stages").glob("*.json")}
    assert "harvest" in done and "sweep" not in done
    monkeypatch.setattr(trainer_module.Trainer, "_train_step", real_step)
    lines = _quiet_run(cfg, tmp_path / "out")
    assert "harvest" not in _ran(lines)
    for run in ("topk", "topk-ft"):
        weights = f"sweep/saes/{run}/sae_weights.safetensors"
        assert (tmp_path / "out" / weights).read_bytes() == (tmp / "out" / weights).read_bytes()
    assert _results(tmp_path / "out") == _results(tmp / "out")


def test_report_of_a_real_study_passes_the_browser_check(finished, tmp_path):
    from browser import open_page
    from report_checks import check_report_in_browser

    tmp, _, _ = finished
    results = json.loads((tmp / "out" / "results.json").read_text())
    assert {r["sae"] for r in results["headline"]["rows"]} == {"topk", "topk-ft"}
    with open_page(tmp_path) as (page, errors):
        check_report_in_browser(page, errors, tmp / "out" / "report.html", tmp_path / "study.png")


def test_sigkilled_cli_run_resumes_to_the_same_results(finished, tmp_path):
    """A real `saeprobe run` process, SIGKILLed as soon as the sweep has a checkpoint: the
    re-run reuses what was finished and ends with the uninterrupted study's SAEs and results."""
    import os
    import signal
    import subprocess
    import sys
    import time

    tmp, _, _ = finished
    out = tmp_path / "out"
    env = os.environ | {"SAEPROBE_CACHE": str(tmp / "cache")}
    cmd = [sys.executable, "-m", "saeprobe.cli", "run", str(tmp / "study.yaml"), "--out",
           str(out), "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((out / "sweep").glob("checkpoints/*/checkpoint.safetensors")):
        assert time.time() < deadline and proc.poll() is None, "no sweep checkpoint appeared"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "report.html").exists()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "[1/8] harvest: reused" in again.stdout
    for run in ("topk", "topk-ft"):
        weights = f"sweep/saes/{run}/sae_weights.safetensors"
        assert (out / weights).read_bytes() == (tmp / "out" / weights).read_bytes()
    assert _results(out) == _results(tmp / "out")
