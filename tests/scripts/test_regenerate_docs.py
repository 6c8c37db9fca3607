"""scripts/regenerate_docs.py on small hand-built run outputs (the real file schemas)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "regenerate_docs.py"


def _load():
    spec = importlib.util.spec_from_file_location("regenerate_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["regenerate_docs"] = module
    spec.loader.exec_module(module)
    return module


regen = _load()
from docs_blocks import KINDS, clear_cache, fmt  # noqa: E402  (importable once the script is)


@pytest.fixture(autouse=True)
def _fresh_json_cache():
    clear_cache()
    yield
    clear_cache()


def _rec(probe, split, auroc, lo, hi, sae=None, k=None, selection=None, pooling="max", **kw):
    n, n_pos = {"train": (40, 20), "val": (20, 10), "ood": (30, 15)}[split]
    return {
        "probe": probe,
        "sae": sae,
        "k": k,
        "selection": selection,
        "seed": 0,
        "split": split,
        "auroc": auroc,
        "auroc_ci_low": lo,
        "auroc_ci_high": hi,
        "tpr_at_1pct_fpr": 0.5,
        "tpr_at_1pct_fpr_val_threshold": 0.75,
        "fpr_at_val_threshold": 0.125,
        "n": n,
        "n_pos": n_pos,
        "pooling": pooling,
        **kw,
    }


def _comp(kind, a, split, delta, lo, hi, sae=None, auroc_a=0.9):
    return {
        "kind": kind,
        "probe_a": a,
        "probe_b": "dense",
        "sae": sae,
        "seed": 0,
        "split": split,
        "auroc_a": auroc_a,
        "auroc_b": auroc_a - delta,
        "delta": delta,
        "ci_low": lo,
        "ci_high": hi,
        "chosen_by": "best SAE probe by val AUROC" if kind == "best_sae_vs_dense" else None,
        "pooling": "max",
    }


def _results(pooling, dense_ood):
    """A results.json of one pooling: dense, one SAE `s` with k-sparse and per-token probes."""
    results = [
        _rec("dense", "train", 1.0, 1.0, 1.0, pooling=pooling),
        _rec("dense", "val", 0.99712, 0.98, 1.0, pooling=pooling),
        _rec("dense", "ood", dense_ood, dense_ood - 0.01, dense_ood + 0.01, pooling=pooling),
        _rec("k_sparse", "val", 0.95, 0.9, 0.99, sae="s", k=20, selection="l1", pooling=pooling),
        _rec("k_sparse", "ood", 0.7, 0.65, 0.75, sae="s", k=20, selection="l1", pooling=pooling),
        _rec("ema", "val", 0.98, 0.96, 1.0, pooling="tokens"),
        _rec(
            "ema",
            "ood",
            0.9,
            0.88,
            0.92,
            pooling="tokens",
            n_train_seeds=3,
            train_seed_auroc_min=0.85,
            train_seed_auroc_max=0.91,
            train_seed_auroc_std=0.02,
        ),
    ]
    return {
        "config": {
            "pooling": pooling,
            "seeds": [0],
            "c_criterion": "auroc_then_log_loss",
            "saes": {"s": {"d_sae": 64, "n_firing_train": 60}},
        },  # fmt: skip
        "timings": {},
        "results": results,
        "comparisons": [
            _comp("vs_dense", "ema", "ood", -0.0304, -0.0401, -0.0207),
            _comp(
                "best_sae_vs_dense", "k_sparse/s/l1/k20", "val", -0.002, -0.006, 0.001, "s", 0.95
            ),
            _comp("best_sae_vs_dense", "k_sparse/s/l1/k20", "ood", 0.0123, 0.0071, 0.018, "s", 0.7),
        ],
        "reconstruction_delta": [
            {
                "sae": "s",
                "seed": 0,
                "split": split,
                "dense_auroc": 1.0,
                "reconstruction_auroc": 1.0,
                "delta": d,
                "delta_ci_low": d - 0.01,
                "delta_ci_high": d + 0.01,
            }  # fmt: skip
            for split, d in [("train", 0.0), ("val", -0.00089), ("ood", 0.09847)]
        ],
        "ood_breakdown": [],
        "probe_info": [],
        "dense_c_choice": [
            {
                "seed": 0,
                "criterion": "auroc_then_log_loss",
                "c": 10.0,
                "chosen": True,
                "auroc_train": 1.0,
                "auroc_val": 0.997,
                "auroc_ood": 0.983,
            },
            {
                "seed": 0,
                "criterion": "auroc",
                "c": 1.0,
                "chosen": False,
                "auroc_train": 1.0,
                "auroc_val": 0.998,
                "auroc_ood": 0.987,
            },
        ],  # fmt: skip
        "sae_seed_results": [],
    }


@pytest.fixture
def runs(tmp_path):
    """tmp_path/runs/probe (two poolings) and tmp_path/runs/sweep, as the CLI writes them."""
    probe = tmp_path / "runs" / "probe"
    (probe / "pooling-eot+0").mkdir(parents=True)
    (probe / "results.json").write_text(json.dumps(_results("max", 0.98286)))
    (probe / "pooling-eot+0" / "results.json").write_text(json.dumps(_results("eot+0", 0.949)))
    (probe / "auroc_vs_k.png").write_bytes(b"\x89PNG fake figure")
    sweep = tmp_path / "runs" / "sweep"
    sweep.mkdir()
    rows = [
        {"name": "pt", "eval_store": "chat-eval", "steps": 142, "l0": 32.0, "fvu": 0.47315620,
         "delta_lm_loss": 1.4587936, "dead_fraction": 0.1636284, "n_high_frequency": 11},
        {"name": "ft", "eval_store": "chat-eval", "steps": 20, "l0": 38.8551, "fvu": 0.343,
         "delta_lm_loss": 0.64421, "dead_fraction": 0.23, "n_high_frequency": 7},
    ]  # fmt: skip
    (sweep / "sweep.json").write_text(json.dumps({"rows": rows, "config": {}}))
    return tmp_path


def _doc(tmp_path, body: str) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    path = docs / "page.md"
    path.write_text(body)
    return path


DOC = """# Page

Intro prose.

<!-- generated: probe-dense-by-pooling run=runs/probe -->
| stale | table |
<!-- /generated -->

Between.

<!-- generated: sweep-table run=runs/sweep columns=name,steps,l0,fvu,delta_lm_loss,dead_fraction,n_high_frequency -->
<!-- /generated -->

<!-- generated: figure run=runs/probe src=auroc_vs_k.png dest=figures/auroc.png alt="AUROC vs k" -->
<!-- /generated -->

End.
"""

EXPECTED = """# Page

Intro prose.

<!-- generated: probe-dense-by-pooling run=runs/probe -->

| pooling | dense train | dense val | dense OOD |
|---|---|---|---|
| max | 1.000 | 0.997 [0.980, 1.000] | 0.983 [0.973, 0.993] |
| eot+0 | 1.000 | 0.997 [0.980, 1.000] | 0.949 [0.939, 0.959] |

<!-- /generated -->

Between.

<!-- generated: sweep-table run=runs/sweep columns=name,steps,l0,fvu,delta_lm_loss,dead_fraction,n_high_frequency -->

| run | steps | L0 | FVU | ΔLM | dead | HF |
|---|---|---|---|---|---|---|
| pt | 142 | 32 | 0.4732 | 1.459 | 0.1636 | 11 |
| ft | 20 | 38.86 | 0.343 | 0.6442 | 0.23 | 7 |

<!-- /generated -->

<!-- generated: figure run=runs/probe src=auroc_vs_k.png dest=figures/auroc.png alt="AUROC vs k" -->

![AUROC vs k](figures/auroc.png)

<!-- /generated -->

End.
"""


def _main(tmp_path, *extra):
    return regen.main(["--runs-root", str(tmp_path), "--docs", str(tmp_path / "docs"), *extra])


def test_blocks_are_rewritten_to_the_expected_tables_and_figures_copied(runs, capsys):
    doc = _doc(runs, DOC)
    assert _main(runs) == 0
    assert doc.read_text() == EXPECTED
    assert (runs / "docs" / "figures" / "auroc.png").read_bytes() == b"\x89PNG fake figure"
    # A second run changes nothing.
    capsys.readouterr()
    assert _main(runs) == 0
    assert "nothing to regenerate" in capsys.readouterr().out
    assert doc.read_text() == EXPECTED


def test_check_fails_on_a_stale_block_writes_nothing_and_passes_after_regeneration(runs, capsys):
    doc = _doc(runs, DOC)
    assert _main(runs, "--check") == 1
    out = capsys.readouterr().out
    assert "stale:" in out and "page.md:5: probe-dense-by-pooling run=runs/probe" in out
    assert "figure" in out
    assert doc.read_text() == DOC  # --check writes nothing
    assert not (runs / "docs" / "figures").exists()
    assert _main(runs) == 0
    assert _main(runs, "--check") == 0
    # The run changes: the doc is stale again, in that block only.
    data = json.loads((runs / "runs/probe/results.json").read_text())
    data["results"][2]["auroc"] = 0.5
    (runs / "runs/probe/results.json").write_text(json.dumps(data))
    clear_cache()
    capsys.readouterr()
    assert _main(runs, "--check") == 1
    out = capsys.readouterr().out
    assert "probe-dense-by-pooling" in out and "sweep-table" not in out
    assert "| max | 1.000 | 0.997 [0.980, 1.000] | 0.500 [0.973, 0.993] |" in out
    # A changed figure is stale too.
    _main(runs)
    (runs / "runs/probe/auroc_vs_k.png").write_bytes(b"\x89PNG another figure")
    assert _main(runs, "--check") == 1


def test_a_missing_run_directory_leaves_the_block_untouched_with_a_warning(runs, capsys):
    body = DOC.replace("run=runs/probe -->", "run=runs/not-here -->")
    doc = _doc(runs, body)
    assert _main(runs) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "page.md:5" in err and "runs/not-here" in err
    text = doc.read_text()
    assert "| stale | table |" in text  # never blanked
    assert "| pt | 142 | 32 |" in text  # the other blocks are still regenerated
    assert _main(runs, "--check") == 0  # a missing run is a warning, not a stale block


@pytest.mark.parametrize(
    "body, line, message",
    [
        ("a\n<!-- generated: sweep-table run=runs/sweep -->\n| x |\n", 2, "never closed"),
        ("a\nb\n<!-- /generated -->\n", 3, "without an opening marker"),
        ("<!-- generated: no-such-kind run=runs/sweep -->\n<!-- /generated -->\n", 1, "unknown"),
        ("<!-- generated: sweep-table runs/sweep -->\n<!-- /generated -->\n", 1, "key=value"),
        ("<!-- generated: sweep-table columns=l0 -->\n<!-- /generated -->\n", 1, "no run="),
        ("x\n<!-- generated sweep-table run=runs/sweep -->\n<!-- /generated -->\n", 2, "malformed"),
        (
            "<!-- generated: sweep-table run=runs/sweep -->\n"
            "<!-- generated: sweep-table run=runs/sweep -->\n<!-- /generated -->\n",
            2,
            "opened inside",
        ),
    ],
)
def test_a_malformed_marker_is_a_one_line_error_naming_file_and_line(
    runs, capsys, body, line, message
):
    doc = _doc(runs, body)
    assert _main(runs) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(f"error: {doc}:{line}: ") and message in err
    assert doc.read_text() == body


def test_markers_inside_code_fences_are_not_blocks(runs):
    body = "```text\n<!-- generated: KIND run=DIR -->\n```\n"
    doc = _doc(runs, body)
    assert _main(runs) == 0
    assert doc.read_text() == body


def test_a_run_without_what_the_block_needs_is_a_one_line_error(runs, capsys):
    _doc(
        runs,
        "<!-- generated: probe-sae-table run=runs/probe pooling=mean -->\n<!-- /generated -->\n",
    )
    assert _main(runs) == 2
    err = capsys.readouterr().err
    assert "page.md:1: probe-sae-table" in err and "pooling mean" in err


def _block(runs, kind_params):
    name, _, rest = kind_params.partition(" ")
    params = dict(word.split("=", 1) for word in rest.split())
    return KINDS[name](runs / params.pop("run"), params).text


def test_probe_block_kinds(runs):
    base = _block(runs, "probe-baselines run=runs/probe")
    assert "| dense (linear on max-pooled) | 0.997 [0.980, 1.000] | 0.983 [0.973, 0.993] |" in base
    assert "| ema | 0.980 [0.960, 1.000] | 0.900 [0.880, 0.920] | 0.500 | 0.750 | 0.125 |" in base
    assert "−0.030 [−0.040, −0.021] | 0.850–0.910 |" in base
    best = _block(runs, "probe-best-sae-vs-dense run=runs/probe")
    assert best.splitlines()[2] == (
        "| s | `k_sparse/s/l1/k20` | 0.950 | 0.700 [0.650, 0.750] | 0.750 (0.125) "
        "| −0.002 [−0.006, +0.001] | +0.012 [+0.007, +0.018] |"
    )
    sae = _block(runs, "probe-sae-table run=runs/probe pooling=eot+0 k=20")
    assert sae.startswith("**eot+0 pooling** (dense OOD 0.949 [0.939, 0.959]):")
    assert "| s | – | 0.950 | 0.700 [0.650, 0.750] | – | – |" in sae
    rec = _block(runs, "probe-reconstruction-delta run=runs/probe")
    assert (
        "| s | +0.000 [−0.010, +0.010] | −0.001 [−0.011, +0.009] | +0.098 [+0.088, +0.108] |" in rec
    )
    c = _block(runs, "probe-c-criterion run=runs/probe")
    assert "| auroc_then_log_loss (this run) | 10 | 0.997 | 0.983 |" in c
    assert "| auroc | 1 | 0.998 | 0.987 |" in c
    rows = _block(runs, "probe-rows run=runs/probe probes=k_sparse/*/l1/k20,dense")
    assert [line.split(" | ")[0] for line in rows.splitlines()[2:]] == [
        "| `k_sparse/s/l1/k20`",
        "| `dense`",
    ]


def test_interp_block_kinds(tmp_path):
    ai = tmp_path / "ai"
    ai.mkdir()
    score = {"n": 200, "uniform_mean": 0.5654, "uniform_mean_ci_low": 0.5295,
             "uniform_mean_ci_high": 0.6013, "frequency_weighted_mean": 0.5564,
             "frequency_weighted_mean_ci_low": 0.5163, "frequency_weighted_mean_ci_high": 0.5954}  # fmt: skip
    row = {"name": "relu-l1_0.05", "series": "relu", "l0": 283.74, "simulation": score}
    (ai / "autointerp_sweep.json").write_text(json.dumps({"rows": [row]}))
    text = KINDS["autointerp-sweep"](ai, {"method": "simulation"}).text
    assert text.splitlines()[2] == (
        "| relu-l1_0.05 | relu | 283.7 | 200 | 0.565 [0.529, 0.601] | 0.556 [0.516, 0.595] |"
    )
    finding = {"rank": 1, "latent": 4440, "mean_diff": -0.10023, "auroc": 0.07664,
               "pattern": "ending_period", "rate_pos": 0.0, "rate_neg": 0.71042,
               "n_active_pos": 26, "n_active_neg": 418, "peak_token": "."}  # fmt: skip
    (ai / "findings.json").write_text(
        json.dumps([finding, {**finding, "rank": 2, "pattern": None}])
    )
    text = KINDS["debug-findings"](ai, {}).text
    assert text.splitlines()[2] == (
        "| 1 | 4440 | −0.1002 | 0.077 | ending_period | 0.0 % | 71.0 % | 26 / 418 | `.` |"
    )
    assert text.splitlines()[3].startswith("| 2 | 4440 | −0.1002 | 0.077 | – | – | – |")


def test_formatting():
    assert fmt.interval(0.98286, 0.97699, 0.98825) == "0.983 [0.977, 0.988]"
    assert fmt.signed_interval(-0.0304, -0.0401, 0.0031) == "−0.030 [−0.040, +0.003]"
    assert fmt.num(None) == "–"
    assert fmt.metric(0.4731562) == "0.4732" and fmt.metric(11) == "11" and fmt.metric(32.0) == "32"
    assert fmt.table(["a"], [["x|y"]]).splitlines()[2] == "| x\\|y |"


def test_every_block_in_the_repository_docs_parses_and_names_a_known_kind():
    markers = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        markers += regen.parse_markers(doc, doc.read_text().splitlines(keepends=True))
    assert markers, "docs/ has no generated blocks"
    assert {m.kind for m in markers} <= set(KINDS)
    assert all(m.params["run"].startswith("runs/") for m in markers)


def test_layer_scan_kind(tmp_path):
    recs = [
        {"layer": layer, "pooling": pool, "cv_auroc": a, "cv_log_loss": ll, "c": 1.0}
        for layer, pool, a, ll in [
            (15, "max", 0.99971, 0.02181),
            (3, "max", 0.99741, 0.06994),
            (3, "eot+0", 0.99031, 0.14221),
        ]
    ]
    (tmp_path / "layer_scan.json").write_text(json.dumps({"records": recs}))
    text = KINDS["layer-scan"](tmp_path, {"poolings": "eot+0,max"}).text
    assert text.splitlines() == [
        "| layer | eot+0 | max |",
        "|---|---|---|",
        "| 3 | 0.9903 / 0.1422 | 0.9974 / 0.0699 |",
        "| 15 | – | 0.9997 / 0.0218 |",
    ]
    with pytest.raises(Exception, match="no pooling mean"):
        KINDS["layer-scan"](tmp_path, {"poolings": "mean"})


def test_by_pooling_kinds(runs):
    text = _block(runs, "probe-per-token-by-pooling run=runs/probe")
    assert text.splitlines()[0] == "| pooling | dense OOD | Δ ema |"
    assert text.splitlines()[3] == "| eot+0 | 0.949 [0.939, 0.959] | −0.030 [−0.040, −0.021] |"
    text = _block(runs, "probe-best-sae-by-pooling run=runs/probe")
    assert text.splitlines()[2] == (
        "| s | +0.012 [+0.007, +0.018] `k_sparse/l1/k20` | +0.012 [+0.007, +0.018] `k_sparse/l1/k20` |"
    )


def test_a_run_file_with_another_schema_is_a_one_line_error(runs, capsys):
    (runs / "runs/sweep/sweep.json").write_text(json.dumps({"no_rows": []}))
    _doc(runs, "<!-- generated: sweep-table run=runs/sweep -->\n<!-- /generated -->\n")
    assert _main(runs) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "page.md:1: sweep-table" in err and "unexpected file contents" in err
