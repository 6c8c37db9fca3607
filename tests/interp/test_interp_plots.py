"""Autointerp figures: rows that share a series and an L0 (a finetune of an SAE has its L0)."""

from saeprobe.interp.plots import plot_score_vs_l0


def test_two_saes_with_the_same_series_and_l0_plot(tmp_path):
    agg = {"n": 3, "uniform_mean": 0.5, "uniform_mean_ci_low": 0.4, "uniform_mean_ci_high": 0.6,
           "frequency_weighted_mean": 0.55, "frequency_weighted_mean_ci_low": 0.45,
           "frequency_weighted_mean_ci_high": 0.65}  # fmt: skip
    rows = [
        {"name": "topk", "series": "TopK", "l0": 8.0, "simulation": dict(agg)},
        {"name": "topk-ft", "series": "TopK", "l0": 8.0, "simulation": agg | {"n": 4}},
    ]
    path = plot_score_vs_l0(rows, tmp_path / "f.png", "simulation", title="t")
    assert path.stat().st_size > 0
