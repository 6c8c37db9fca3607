"""The interp commands through the CLI: each prints one line and exits 2 on bad input."""

from click.testing import CliRunner
from conftest import make_sae

from saeprobe.cli import main
from saeprobe.sae.io import save_sae
from saeprobe.sae.registry import create_sae


def _one_line_error(result, *words):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for w in words:
        assert w in lines[0]


def test_latents_cli_errors(tiny_store, tmp_path):
    runner = CliRunner()
    wide = tmp_path / "wide"
    save_sae(create_sae({"architecture": "relu", "d_in": 64, "d_sae": 8}), wide)
    args = ["latents", "--acts", str(tiny_store), "--out", str(tmp_path / "o"), "--no-progress"]
    _one_line_error(runner.invoke(main, [*args, "--sae", str(wide)]), "d_in=64")
    dead = make_sae(tmp_path / "dead", tiny_store, d_sae=8, dead=8)
    _one_line_error(runner.invoke(main, [*args, "--sae", str(dead)]), "no live latents")
    _one_line_error(runner.invoke(main, [*args, "--sae", str(tmp_path / "none")]), "none")


def test_latents_then_autointerp_and_dashboard_cli(tiny_store, tiny_sae, tmp_path):
    runner = CliRunner()
    out = tmp_path / "lat"
    result = runner.invoke(main, ["latents", "--sae", str(tiny_sae), "--acts", str(tiny_store),
                                  "--out", str(out), "--n-top", "4", "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "live" in result.output and "dead" in result.output
    result = runner.invoke(main, ["autointerp", "--latents", str(out), "--sae", str(tiny_sae),
                                  "--out", str(tmp_path / "ai"), "--explainer", "baseline",
                                  "--scoring", "simulation,fuzzing", "--n-latents", "4",
                                  "--n-bootstrap", "20", "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "simulation: uniform" in result.output and "fuzzing: uniform" in result.output
    result = runner.invoke(main, ["dashboard", "--latents", str(out), "--autointerp",
                                  str(tmp_path / "ai"), "--out", str(tmp_path / "d.html")])  # fmt: skip
    assert result.exit_code == 0 and (tmp_path / "d.html").stat().st_size > 1000
    result = runner.invoke(main, ["autointerp", "--latents", str(out), "--out", str(tmp_path),
                                  "--explainer", "gpt4"])  # fmt: skip
    _one_line_error(result, "not one of baseline")
