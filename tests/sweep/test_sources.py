"""A probe config that names runs of a sweep trains those runs (and what they finetune from),
not the whole sweep."""

import yaml

import saeprobe.sweep.sources as probe_module
from saeprobe.sweep.sources import SaeSources, resolve_saes


def test_named_runs_are_the_only_runs_asked_of_the_sweep(tmp_path, monkeypatch):
    sweep = {
        "stores": {"s": {"model": "minilm", "layer": 3, "max_tokens": 1000}},
        "d_sae": 32,
        "phases": [{"name": "p", "store": "s",
                    "grid": [{"architecture": "topk", "k": k, "name": f"t{k}"}
                             for k in (2, 4, 8, 16)]}],
    }  # fmt: skip
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    asked = []
    monkeypatch.setattr(probe_module, "run_sweep", lambda cfg, out, **kw: asked.append(kw))
    sources = SaeSources(sweep=tmp_path / "sweep.yaml", sweep_out=tmp_path / "out",
                         runs=["t2", "t8"])  # fmt: skip
    dirs, _ = resolve_saes(sources, progress=False)
    assert sorted(dirs) == ["t2", "t8"]
    assert asked == [{"progress": False, "runs": ["t2", "t8"]}]
