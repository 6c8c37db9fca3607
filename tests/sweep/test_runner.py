"""A small two-phase sweep end to end: table, figures, chat variants, resume, errors."""

import csv
import json

import pytest
import yaml
from harvest_helpers import cli

from saeprobe.errors import ConfigError
from saeprobe.sae.config import build_config
from saeprobe.sae.io import save_sae
from saeprobe.sae.registry import create_sae
from saeprobe.sweep.config import SweepConfig
from saeprobe.sweep.runner import run_sweep
from saeprobe.train import trainer as trainer_module

PROMPTS = [
    f"Please explain how {t} works, step by step."
    for t in (
        "photosynthesis",
        "a bicycle",
        "compound interest",
        "a compiler",
        "the heart",
        "radar",
        "a refrigerator",
        "vaccination",
        "an election",
        "a volcano",
        "the stock market",
        "tides",
    )
]


def sweep_dict(tmp):
    (tmp / "chat.jsonl").write_text("".join(json.dumps({"text": p}) + "\n" for p in PROMPTS * 20))
    (tmp / "probe.csv").write_text(
        "prompt\n" + "".join(f"How do I {w}?\n" for w in ("cook", "swim"))
    )
    return {
        "stores": {
            "pretrain": {"model": "minilm", "layer": 3, "max_tokens": 3500, "context": 32},
            "chat": {
                "model": "minilm",
                "layer": 3,
                "data": str(tmp / "chat.jsonl"),
                "chat": True,
                "max_tokens": 1200,
                "context": 32,
                "mix": [{"data": str(tmp / "probe.csv"), "field": "prompt", "repeats": 3}],
            },
        },
        "d_sae": 64,
        "batch_size": 256,
        "eval_tokens": 512,
        "lm_windows": 4,
        "train": {"checkpoint_every": 3},
        "phases": [
            {
                "name": "pretrain",
                "store": "pretrain",
                "eval_store": "chat",  # every variant is judged on held-out chat data
                "snapshot_steps": [5],
                "grid": [
                    {"architecture": "relu", "l1_coefficient": [0.1, 1.0]},
                    {
                        "architecture": "jumprelu",
                        "sparsity_penalty": "quadratic-frequency",
                        "frequency_scale": 0.1,
                        "sparsity_coefficient": 0.03,
                    },
                    {"architecture": "topk", "k": [4, 16]},
                ],
            },
            {
                "name": "chat",
                "store": "chat",
                "steps": 3,
                "grid": [
                    {
                        "name": "ft",
                        "architecture": "topk",
                        "k": 16,
                        "init_from": "topk-k_16",
                        "reinit_fraction": 0.1,
                    },
                    {
                        "name": "ft-comparable",
                        "architecture": "topk",
                        "k": 16,
                        "init_from": "topk-k_16@5",
                    },
                    {"name": "scratch", "architecture": "topk", "k": 16},
                ],
            },
        ],
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    mp = pytest.MonkeyPatch()
    mp.setenv("SAEPROBE_CACHE", str(tmp / "cache"))
    cfg = build_config(SweepConfig, sweep_dict(tmp))
    rows = run_sweep(cfg, tmp / "out", progress=False, log=lambda m: None)
    yield tmp, cfg, rows
    mp.undo()


def test_table_and_figures(finished):
    tmp, _, rows = finished
    out = tmp / "out"
    with open(out / "sweep.csv") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(rows) == 8
    for column in ("architecture", "l0", "fvu", "n_high_frequency", "frequency_scale", "sae_dir"):
        assert column in table[0]
    by_name = {r["name"]: r for r in table}
    assert float(by_name["topk-k_4"]["l0"]) == pytest.approx(4)
    assert by_name["jumprelu-qf"]["frequency_scale"] == "0.1"
    assert float(by_name["relu-l1_1"]["l0"]) < float(by_name["relu-l1_0.1"]["l0"])
    names = ("pareto-pretrain", "frequencies-pretrain", "pareto-chat", "frequencies-chat")
    names += ("pareto-all",)  # every phase is evaluated on the chat store: one figure for all
    for name in names:
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "sweep.json").read_text())["rows"][0]["name"] == "relu-l1_0.1"
    assert {r["eval_store"] for r in table} == {"chat"}
    assert all(r["store"] == r["phase"] for r in table)
    summary = (out / "sweep.md").read_text().splitlines()
    assert summary[0].startswith("| run | eval on |") and "emb. cos" in summary[0]
    assert len(summary) == 2 + len(rows) and "ΔLM" not in summary[0]  # an encoder: no LM loss


def test_chat_variants_start_where_configured(finished):
    tmp, _, rows = finished
    out = tmp / "out"
    assert (out / "snapshots" / "topk-k_16" / "step5" / "cfg.json").exists()
    meta = json.loads((out / "saes" / "ft" / "cfg.json").read_text())["metadata"]
    assert meta["init_from"] == "topk-k_16" and meta["chat"] and meta["phase"] == "chat"
    chat = {r["name"]: r for r in rows if r["phase"] == "chat"}
    assert chat["ft"]["reinit_fraction"] == 0.1 and chat["ft"]["steps"] == 3


def test_rerun_retrains_nothing_and_reevaluates_only_what_is_missing(finished, monkeypatch):
    tmp, cfg, rows = finished
    monkeypatch.setenv("SAEPROBE_CACHE", str(tmp / "cache"))
    (tmp / "out" / "evals" / "scratch.json").unlink()

    def no_training(*a, **k):
        raise AssertionError("a finished phase was retrained")

    monkeypatch.setattr(trainer_module.Trainer, "fit", no_training)
    again = run_sweep(cfg, tmp / "out", progress=False, log=lambda m: None)
    strip = lambda r: {k: v for k, v in r.items() if k != "eval_seconds"}  # noqa: E731
    assert [strip(r) for r in again] == [strip(r) for r in rows]


def test_kill_during_training_resumes_to_identical_saes(finished, tmp_path, monkeypatch):
    tmp, cfg, _ = finished
    monkeypatch.setenv("SAEPROBE_CACHE", str(tmp / "cache"))
    real_step = trainer_module.Trainer._train_step

    def dying(self, run, x, step, total_var):
        if step == 7:
            raise KeyboardInterrupt
        return real_step(self, run, x, step, total_var)

    monkeypatch.setattr(trainer_module.Trainer, "_train_step", dying)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, tmp_path / "out", progress=False, log=lambda m: None)
    monkeypatch.setattr(trainer_module.Trainer, "_train_step", real_step)
    run_sweep(cfg, tmp_path / "out", progress=False, log=lambda m: None)
    for name in ("relu-l1_0.1", "topk-k_16", "ft"):
        weights = f"saes/{name}/sae_weights.safetensors"
        assert (tmp_path / "out" / weights).read_bytes() == (tmp / "out" / weights).read_bytes()


def test_another_config_in_the_same_directory_is_refused(finished):
    tmp, cfg, _ = finished
    other = cfg.model_copy(update={"d_sae": 128})
    with pytest.raises(ConfigError, match="holds a sweep with another config"):
        run_sweep(other, tmp / "out", progress=False, log=lambda m: None)


def _cli_sweep(tmp_path, data, monkeypatch):
    monkeypatch.setenv("SAEPROBE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return cli("sweep", str(path), "--out", str(tmp_path / "out"), "--no-progress")


@pytest.mark.parametrize(
    "grid, message",
    [
        ([{"architecture": "mystery"}], "unknown SAE architecture 'mystery'"),
        (
            [{"architecture": "relu", "name": "a"}, {"architecture": "topk", "k": 4, "name": "a"}],
            "duplicate run name 'a'",
        ),
    ],
)
def test_bad_sweep_configs_are_one_line_errors(tmp_path, monkeypatch, grid, message):
    data = sweep_dict(tmp_path)
    data["phases"] = [{"name": "p", "store": "pretrain", "grid": grid}]
    r = _cli_sweep(tmp_path, data, monkeypatch)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_finetuning_an_sae_of_another_width_is_a_one_line_error(tmp_path, monkeypatch):
    save_sae(
        create_sae({"architecture": "topk", "d_in": 16, "d_sae": 64, "k": 4}), tmp_path / "narrow"
    )
    data = sweep_dict(tmp_path)
    data["phases"] = [
        {
            "name": "p",
            "store": "pretrain",
            "steps": 2,
            "grid": [{"architecture": "topk", "k": 4, "init_from": str(tmp_path / "narrow")}],
        }
    ]
    r = _cli_sweep(tmp_path, data, monkeypatch)
    last = r.stderr.strip().splitlines()[-1]  # progress lines come first
    assert r.returncode == 2 and last.startswith("error:") and "Traceback" not in r.stderr
    assert "d_in=16" in last and "d_in=384" in last


def test_named_runs_train_with_their_ancestors_only_and_the_rest_later(finished, tmp_path):
    _, cfg, _ = finished
    out = tmp_path / "subset"
    rows = run_sweep(cfg, out, progress=False, log=lambda m: None, runs=["ft"])
    assert {r["name"] for r in rows} == {"ft", "topk-k_16"}
    assert sorted(p.name for p in (out / "saes").iterdir()) == ["ft", "topk-k_16"]
    ft_weights = (out / "saes" / "ft" / "sae_weights.safetensors").read_bytes()
    rows = run_sweep(cfg, out, progress=False, log=lambda m: None)
    assert len(rows) == 8
    assert (out / "saes" / "ft" / "sae_weights.safetensors").read_bytes() == ft_weights


def test_with_ancestors_follows_snapshots_and_names_unknown_runs(finished):
    from saeprobe.sweep.config import with_ancestors

    _, cfg, _ = finished
    assert with_ancestors(cfg, ["ft-comparable", "scratch"]) == {
        "ft-comparable", "topk-k_16", "scratch"
    }  # fmt: skip
    with pytest.raises(ConfigError, match="not in the sweep; choose from"):
        with_ancestors(cfg, ["fx"])
