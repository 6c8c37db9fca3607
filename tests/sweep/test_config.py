"""Sweep configs: grid expansion, run names, and one-line errors for every bad config."""

import pytest

from saeprobe.errors import ConfigError
from saeprobe.sae.config import build_config
from saeprobe.sweep.config import SweepConfig, plan_runs


def _config(*phases, **kw):
    return build_config(
        SweepConfig,
        {
            "stores": {"s": {"layer": 3, "max_tokens": 1000}},
            "d_sae": 64,
            "phases": list(phases),
            **kw,
        },
    )


def _phase(name="p", *grid, **kw):
    return {"name": name, "store": "s", "grid": list(grid), **kw}


def test_lists_are_crossed_and_runs_named_by_what_was_swept():
    cfg = _config(
        _phase(
            "p",
            {"architecture": "topk", "k": [8, 16]},
            {
                "architecture": "jumprelu",
                "sparsity_penalty": "quadratic-frequency",
                "frequency_scale": [0.1, 0.01],
                "sparsity_coefficient": [0.01, 0.1],
            },
            {"architecture": "relu", "name": "single", "l1_coefficient": 0.3, "d_sae": 32},
        )
    )
    plans = plan_runs(cfg)
    names = [p.name for p in plans]
    assert names[:2] == ["topk-k_8", "topk-k_16"]
    assert "jumprelu-qf-w0_0.01-lam_0.1" in names and len(names) == 2 + 4 + 1
    single = plans[-1]
    assert single.name == "single" and single.sae["d_sae"] == 32 and single.swept == {}
    assert plans[2].series == "jumprelu QF ω0=0.1" and plans[0].series == "topk"


def test_duplicate_run_names_are_rejected():
    cfg = _config(
        _phase("a", {"architecture": "topk", "k": 8, "name": "x"}),
        _phase("b", {"architecture": "relu", "name": "x"}),
    )
    with pytest.raises(ConfigError, match="duplicate run name 'x' \\(phases 'a' and 'b'\\)"):
        plan_runs(cfg)


def test_unknown_architecture_lists_the_choices():
    with pytest.raises(ConfigError, match="unknown SAE architecture 'mystery'; choose one of"):
        plan_runs(_config(_phase("p", {"architecture": "mystery"})))


def test_bad_sae_setting_fails_before_any_work():
    with pytest.raises(ConfigError, match="k=100 exceeds d_sae=64"):
        plan_runs(_config(_phase("p", {"architecture": "topk", "k": [8, 100]})))


@pytest.mark.parametrize("ref", ["later-run", "later-run@5", "/nonexistent/sae"])
def test_init_from_must_name_an_earlier_run_or_a_directory(ref):
    cfg = _config(
        _phase("first", {"architecture": "topk", "k": 8, "init_from": ref, "name": "ft"}),
        _phase("second", {"architecture": "topk", "k": 8, "name": "later-run"}),
    )
    with pytest.raises(ConfigError, match="neither a directory nor a run of an earlier phase"):
        plan_runs(cfg)


def test_phase_must_use_a_defined_store():
    with pytest.raises(ConfigError, match="uses store 'nope'; define it under stores"):
        _config({"name": "p", "store": "nope", "grid": [{"architecture": "relu"}]})


def test_eval_store_must_be_defined_too():
    phase = {"name": "p", "store": "s", "eval_store": "chat", "grid": [{"architecture": "relu"}]}
    with pytest.raises(ConfigError, match="uses store 'chat'; define it under stores"):
        _config(phase)


def test_a_dataset_mix_defaults_to_the_train_split_and_takes_no_field():
    store = {"layer": 3, "max_tokens": 1000, "mix": [{"dataset": "default"}]}
    cfg = _config(_phase("p", {"architecture": "relu"}), stores={"s": store})
    assert cfg.stores["s"].mix[0].split == "train"
    store["mix"] = [{"dataset": "default", "field": "text"}]
    with pytest.raises(ConfigError, match="takes no field"):
        _config(_phase("p", {"architecture": "relu"}), stores={"s": store})


def test_store_key_covers_a_dataset_mix(tmp_path):
    from saeprobe.sweep.config import StoreSpec
    from saeprobe.sweep.stores import store_key

    base = {"layer": 3, "max_tokens": 1000}
    plain = store_key(StoreSpec(**base))
    train = store_key(StoreSpec(**base, mix=[{"dataset": "default"}]))
    val = store_key(StoreSpec(**base, mix=[{"dataset": "default", "split": "val"}]))
    assert len({plain, train, val}) == 3
