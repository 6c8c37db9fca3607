"""A sweep under `recipe: gemma-scope` with AuxK switched per run: the table says which runs
used AuxK, and each saved cfg.json records what the recipe set."""

import csv
import json

import pytest

from saeprobe.errors import ConfigError
from saeprobe.sae.auxk import auxk_settings
from saeprobe.sae.config import build_config
from saeprobe.sweep.config import SweepConfig, plan_runs
from saeprobe.sweep.runner import _config_record, run_sweep
from saeprobe.train.recipes import RECIPES

GS = RECIPES["gemma-scope"]


def _config(tmp, corpus):
    store = {"model": "minilm", "layer": 3, "data": str(corpus), "max_tokens": 1400,
             "context": 32, "path": str(tmp / "store")}  # fmt: skip
    grid = [
        {"architecture": "gated", "auxk": [True, False]},
        {"architecture": "jumprelu", "sparsity_coefficient": 0.01},
        {"name": "jr-auxk", "architecture": "jumprelu", "auxk": True, "bandwidth": 0.01},
        {"architecture": "batchtopk", "k": 4},
    ]
    data = {"stores": {"s": store}, "d_sae": 32, "batch_size": 256, "eval_tokens": 384,
            "lm_windows": 0, "recipe": "gemma-scope",
            "phases": [{"name": "p", "store": "s", "steps": 3, "grid": grid}]}  # fmt: skip
    return build_config(SweepConfig, data)


@pytest.fixture(scope="module")
def swept(tmp_path_factory, corpus):
    tmp = tmp_path_factory.mktemp("recipe-sweep")
    messages = []
    rows = run_sweep(_config(tmp, corpus), tmp / "out", progress=False, log=messages.append)
    return tmp / "out", {r["name"]: r for r in rows}, messages


def test_the_table_says_which_runs_used_auxk(swept):
    out, rows, _ = swept
    auxk = {name: row["auxk"] for name, row in rows.items()}
    # jumprelu: off under the recipe; batchtopk keeps its default; gated switched per run.
    assert auxk == {"gated-auxk_on": True, "gated-auxk_off": False, "jumprelu": False,
                    "jr-auxk": True, "batchtopk": True}  # fmt: skip
    assert rows["gated-auxk_on"]["aux_coefficient"] == pytest.approx(1 / 32)
    with open(out / "sweep.csv") as fh:
        table = {r["name"]: r for r in csv.DictReader(fh)}
    assert (
        table["gated-auxk_off"]["auxk"] == "False" and table["jumprelu"]["recipe"] == "gemma-scope"
    )
    header, _, *lines = (out / "sweep.md").read_text().splitlines()
    assert "| AuxK |" in header
    assert (
        sum("| no |" in line for line in lines) == 2
        and sum("| yes |" in line for line in lines) == 3
    )


def test_each_cfg_json_records_what_the_recipe_set(swept):
    out, _, messages = swept
    jumprelu = json.loads((out / "saes" / "jumprelu" / "cfg.json").read_text())
    recipe = jumprelu["metadata"]["recipe"]
    assert recipe["name"] == "gemma-scope"
    assert recipe["train"] == {
        k: list(v) if isinstance(v, tuple) else v for k, v in GS.train.items()
    }
    assert recipe["sae"] == GS.sae | GS.sae_by_architecture["jumprelu"]
    assert jumprelu["saeprobe"]["config"]["bandwidth"] == 0.001
    # What a grid entry sets itself is not the recipe's.
    own = json.loads((out / "saes" / "jr-auxk" / "cfg.json").read_text())
    assert own["metadata"]["recipe"]["sae"] == {"encoder_init_scale": 1.0, "threshold_init": 0.001}
    assert own["saeprobe"]["config"]["bandwidth"] == 0.01
    assert own["saeprobe"]["config"]["aux_coefficient"] == pytest.approx(1 / 32)
    assert any("warm-up (10000 steps) is longer than this run (3 steps)" in m for m in messages)


def test_auxk_and_aux_coefficient_must_agree(tmp_path, corpus):
    cfg = _config(tmp_path, corpus)
    bad = cfg.model_copy(deep=True)
    bad.phases[0].grid = [{"architecture": "jumprelu", "auxk": False, "aux_coefficient": 0.1}]
    with pytest.raises(ConfigError, match="keep one of them"):
        plan_runs(bad)
    with pytest.raises(ConfigError, match="unknown recipe"):
        build_config(SweepConfig, cfg.model_dump() | {"recipe": "nope"})


def test_auxk_switch_semantics():
    assert auxk_settings(None, {"aux_coefficient": 0.2}) == {}
    assert auxk_settings(False, {"aux_coefficient": 0.2}) == {"aux_coefficient": 0.0}
    assert auxk_settings(True, {}) == {"aux_coefficient": pytest.approx(1 / 32)}  # Gated, ReLU
    assert auxk_settings(True, {"aux_coefficient": 0.2}) == {}  # keeps the coefficient given


def test_a_sweep_directory_from_before_recipes_still_resumes(tmp_path, corpus):
    record = _config_record(_config(tmp_path, corpus).model_copy(update={"recipe": None}))
    assert "recipe" not in record and all("recipe" not in p for p in record["phases"])
    assert _config_record(_config(tmp_path, corpus))["recipe"] == "gemma-scope"
