"""`saeprobe autointerp-sweep` on a tiny finished sweep (JumpReLU, JumpReLU-QF, TopK on the
random tiny Llama): per-SAE results, the table, both figures; one-line errors on bad input."""

import json

import pytest
from click.testing import CliRunner

from saeprobe.cli import main
from saeprobe.errors import DataError
from saeprobe.interp.sweep import SweepAutointerpConfig, run_autointerp_sweep
from saeprobe.sae.config import build_config
from saeprobe.sweep.config import SweepConfig
from saeprobe.sweep.runner import run_sweep


@pytest.fixture(scope="module")
def tiny_sweep(tiny_llama, tmp_path_factory):
    from saeprobe.data.default_corpus import iter_default_corpus

    root = tmp_path_factory.mktemp("tiny_sweep")
    docs = [d[:1200] for _, d in zip(range(30), iter_default_corpus(), strict=False)]
    (root / "docs.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    cfg = {
        "stores": {"s": {"model": tiny_llama.name, "layer": 1, "data": str(root / "docs.jsonl"),
                         "max_tokens": 2600, "context": 32, "path": str(root / "store")}},
        "d_sae": 32, "batch_size": 256, "eval_tokens": 512, "lm_windows": 0,
        "phases": [{"name": "p", "store": "s", "steps": 6, "grid": [
            {"architecture": "jumprelu", "sparsity_coefficient": 0.001},
            {"architecture": "jumprelu", "sparsity_penalty": "quadratic-frequency",
             "frequency_scale": 0.1, "sparsity_coefficient": 0.001, "name": "jumprelu-qf"},
            {"architecture": "topk", "k": 4},
        ]}],
    }  # fmt: skip
    run_sweep(build_config(SweepConfig, cfg), root / "sweep", progress=False, log=lambda _: None)
    return root / "sweep"


def test_autointerp_sweep_writes_table_and_figures(tiny_sweep, tmp_path):
    cfg = SweepAutointerpConfig(
        sweep_dir=tiny_sweep,
        out=tmp_path / "ai",
        latents={"n_top": 5, "n_random": 5},
        autointerp={"explainer": "baseline", "n_latents": 8, "n_bootstrap": 20},
        progress=False,
    )
    summary = run_autointerp_sweep(cfg, log=lambda _: None)
    rows = {r["name"]: r for r in summary["rows"]}
    assert set(rows) == {"jumprelu", "jumprelu-qf", "topk"}
    assert rows["jumprelu-qf"]["series"] == "jumprelu QF ω0=0.1"
    for r in rows.values():
        assert r["l0"] > 0 and r["simulation"]["n"] > 0
        assert (tmp_path / "ai" / r["name"] / "autointerp.json").is_file()
        assert (tmp_path / "ai" / r["name"] / "dashboard.html").is_file()
        assert (tiny_sweep / "autointerp" / "latents" / r["name"] / "latents.json").is_file()
    for name in ("score_vs_l0_simulation", "score_vs_frequency_simulation"):
        assert (tmp_path / "ai" / f"{name}.png").stat().st_size > 1000
    assert "jumprelu-qf" in (tmp_path / "ai" / "autointerp_sweep.md").read_text()
    # A second run reuses the records and every autointerp result.
    lines: list[str] = []
    run_autointerp_sweep(cfg, log=lines.append)
    assert not any("latents on store" in line for line in lines)
    assert sum("resuming: 8 of 8" in line for line in lines) == 3


def test_sweep_directory_without_saes(tmp_path, tiny_sweep):
    with pytest.raises(DataError, match="not a sweep directory"):
        run_autointerp_sweep(SweepAutointerpConfig(sweep_dir=tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "sweep_config.json").write_text((tiny_sweep / "sweep_config.json").read_text())
    result = CliRunner().invoke(main, ["autointerp-sweep", str(empty), "--explainer", "baseline"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: the sweep directory {empty} holds no trained SAEs (saes/*/cfg.json); "
        "finish the sweep first"
    ]
