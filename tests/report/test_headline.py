"""Known answers for the headline: rows from a results dict, and the sentence either way."""

from __future__ import annotations

import pytest
from synthetic_study import DENSE_OOD, probe_results

from saeprobe.report.headline import (
    agreement,
    headline_rows,
    headline_sentence,
    headline_table,
)

SWEEP_ROWS = [{"name": "relu-a", "series": "relu"}, {"name": "topk-a", "series": "topk"}]


def test_rows_read_the_ood_best_sae_comparisons_with_intervals():
    rows = headline_rows(probe_results(), SWEEP_ROWS)
    assert [r["sae"] for r in rows] == ["relu-a", "topk-a", "ft"]
    relu = rows[0]
    assert relu["architecture"] == "relu"
    assert rows[2]["architecture"] is None  # not in the sweep rows given
    assert relu["split"] == "ood"
    assert relu["best_probe"] == "k_sparse/relu-a/l1/k5"
    assert relu["dense_auroc"] == pytest.approx(DENSE_OOD)
    assert relu["dense_ci_low"] == pytest.approx(DENSE_OOD - 0.01)
    assert relu["sae_auroc"] == pytest.approx(DENSE_OOD - 0.12)
    assert relu["sae_ci_high"] == pytest.approx(DENSE_OOD - 0.12 + 0.01)
    assert relu["delta"] == pytest.approx(-0.12)
    assert (relu["delta_ci_low"], relu["delta_ci_high"]) == pytest.approx((-0.14, -0.10))
    assert relu["winner"] == "dense"


def test_rows_take_the_first_seed_only():
    results = probe_results()
    extra = [c | {"seed": 1, "delta": 0.5} for c in results["comparisons"]]
    results["comparisons"] += extra
    rows = headline_rows(results)
    assert len(rows) == 3 and all(r["seed"] == 0 for r in rows)


def test_dense_wins_everywhere():
    rows = headline_rows(probe_results())
    text = headline_sentence(rows)
    assert text == (
        "The dense probe beats every SAE's best probe OOD by 0.05–0.12 AUROC; every paired "
        "95 % interval excludes zero."
    )
    assert agreement(rows) == "agrees with the study"


def test_every_sae_wins():
    deltas = {"relu-a": (0.03, 0.01), "topk-a": (0.02, 0.01)}
    rows = headline_rows(probe_results(deltas, dense_ood=0.9))
    assert [r["winner"] for r in rows] == ["sae", "sae"]
    assert headline_sentence(rows) == (
        "Every SAE's best probe beats the dense probe OOD by 0.02–0.03 AUROC; every paired 95 % "
        "interval excludes zero."
    )
    assert agreement(rows) == "contradicts the study"


def test_mixed_results_count_each_side_by_the_interval_sign():
    deltas = {"relu-a": (-0.12, 0.02), "topk-a": (0.004, 0.002), "ft": (-0.01, 0.02)}
    rows = headline_rows(probe_results(deltas))
    assert [r["winner"] for r in rows] == ["dense", "sae", "tie"]
    assert headline_sentence(rows) == (
        "OOD: the dense probe beats the best probes of 1 of the 3 SAEs by 0.12 AUROC; the best "
        "probe of 1 SAE beats it by 0.004; 1 is level with it (the paired interval includes "
        "zero)."
    )
    assert agreement(rows) == "does not reproduce the study's finding"


def test_all_ties():
    rows = headline_rows(probe_results({"relu-a": (-0.01, 0.02), "ft": (0.005, 0.01)}))
    text = headline_sentence(rows)
    assert text.startswith("No SAE's best probe differs from the dense probe OOD beyond chance")
    assert "from -0.010 to +0.005" in text


def test_one_sae():
    rows = headline_rows(probe_results({"topk-a": (-0.05, 0.01)}))
    assert headline_sentence(rows).startswith(
        "The dense probe beats the one SAE's best probe OOD by 0.05 AUROC"
    )


def test_no_rows():
    assert headline_rows({"config": {}, "results": [], "comparisons": []}) == []
    assert headline_sentence([]).startswith("No headline")
    assert headline_table([]).startswith("no headline")


def test_table_is_aligned_and_carries_intervals():
    sweep_rows = [*SWEEP_ROWS, {"name": "ft", "series": "topk"}]
    text = headline_table(headline_rows(probe_results(), sweep_rows))
    lines = text.splitlines()
    assert len(lines) == 2 + 3
    assert lines[1].replace(" ", "").strip("-") == ""  # the rule under the header
    # Every column starts at the same offset on every line.
    starts = [i + 2 for i, ch in enumerate(lines[1]) if lines[1][i : i + 3] == "  -"]
    for line in lines[2:]:
        for s in starts:
            assert line[s - 1] == " " and line[s] != " "
    assert "0.950 [0.940, 0.960]" in lines[2]
    assert "-0.120 [-0.140, -0.100]" in lines[2]
    assert lines[2].split()[1] == "relu"
