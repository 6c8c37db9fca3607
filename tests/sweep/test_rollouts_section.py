"""A sweep's `rollouts:` section: chat data generated once, cached, and read by a store."""

import pytest

from saeprobe.errors import ConfigError
from saeprobe.sae.config import build_config
from saeprobe.sweep.config import SweepConfig
from saeprobe.sweep.rollouts import RolloutsSpec, ensure_rollouts, rollouts_path


def _sweep(**kw):
    return {
        "stores": {"chat": {"layer": 1, "data": "rollouts:mine", "max_tokens": 100}},
        "d_sae": 8,
        "phases": [{"name": "p", "store": "chat", "grid": [{"architecture": "topk", "k": 2}]}],
        **kw,
    }


def test_a_store_must_name_a_defined_rollouts_entry():
    with pytest.raises(ConfigError, match="reads rollouts 'mine'; define it under rollouts"):
        build_config(SweepConfig, _sweep())
    cfg = build_config(SweepConfig, _sweep(rollouts={"mine": {"limit": 3}}))
    assert cfg.rollouts["mine"].out is None


def test_rollouts_are_generated_once_into_the_cache(tiny_llama_path, tmp_path, monkeypatch):
    monkeypatch.setenv("SAEPROBE_CACHE", str(tmp_path / "cache"))
    spec = RolloutsSpec(model=str(tiny_llama_path), limit=3, max_new_tokens=4, progress=False)
    logs = []
    path = ensure_rollouts("mine", spec, progress=False, log=logs.append)
    assert path == rollouts_path("mine", spec) and path.parent == tmp_path / "cache" / "rollouts"
    assert len(path.read_text().splitlines()) == 3 and len(logs) == 2
    stamp = path.stat().st_mtime_ns
    assert ensure_rollouts("mine", spec, progress=False, log=logs.append) == path
    assert path.stat().st_mtime_ns == stamp and len(logs) == 2  # reused, not regenerated
    other = spec.model_copy(update={"max_new_tokens": 5})
    assert rollouts_path("mine", other) != path  # other settings, other file
