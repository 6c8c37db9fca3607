import numpy as np
import pytest
from matplotlib.figure import Figure

from saeprobe.errors import DataError
from saeprobe.sweep.plots import pareto_frontier, plot_frequency_histograms, plot_pareto

NAN = float("nan")


# --- pareto_frontier ---------------------------------------------------------------------------


def test_frontier_known_answer():
    assert pareto_frontier([1, 2, 3, 4], [0.5, 0.6, 0.3, 0.1]) == [0, 2, 3]


def test_frontier_sorted_by_l0_not_input_order():
    assert pareto_frontier([4, 1, 3, 2], [0.1, 0.5, 0.3, 0.6]) == [1, 2, 0]


def test_frontier_skips_nan_and_none():
    # Without the skip, the NaN/None points would either crash or "dominate" everything.
    assert pareto_frontier([1, NAN, 2, 3, None], [0.5, 0.0, 0.4, 0.6, 0.0]) == [0, 2]
    assert pareto_frontier([1, 2], [NAN, NAN]) == []
    assert pareto_frontier([], []) == []


def test_frontier_keeps_first_of_identical_points():
    assert pareto_frontier([2, 1, 2, 1], [0.3, 0.5, 0.3, 0.5]) == [1, 0]


def test_frontier_equal_l0_keeps_lowest_y():
    assert pareto_frontier([5, 5, 5], [0.4, 0.2, 0.3]) == [1]


def test_frontier_equal_y_at_larger_l0_is_dominated():
    assert pareto_frontier([1, 2, 3], [0.2, 0.2, 0.1]) == [0, 2]


def test_frontier_matches_brute_force_definition():
    rng = np.random.default_rng(0)
    l0 = rng.integers(1, 8, size=60).astype(float)
    y = rng.integers(0, 8, size=60) / 8
    front = pareto_frontier(l0.tolist(), y.tolist())

    def dominated(i):
        return any(
            l0[j] <= l0[i] and y[j] <= y[i] and (l0[j] < l0[i] or y[j] < y[i])
            for j in range(len(l0))
        )

    expected_points = {(l0[i], y[i]) for i in range(len(l0)) if not dominated(i)}
    assert {(l0[i], y[i]) for i in front} == expected_points
    assert len(front) == len(expected_points)  # one index per distinct point
    assert [l0[i] for i in front] == sorted(l0[i] for i in front)


def test_frontier_length_mismatch():
    with pytest.raises(DataError, match="one y per L0"):
        pareto_frontier([1, 2], [0.1])


# --- plot_pareto -------------------------------------------------------------------------------

ROWS = [
    {"series": "topk", "l0": 8, "fvu": 0.30, "nmse": 0.2},
    {"series": "topk", "l0": 16, "fvu": 0.20, "nmse": 0.1},
    {"series": "topk", "l0": 32, "fvu": 0.25, "nmse": 0.1},  # dominated
    {"series": "jumprelu QF w0=0.1", "l0": 10, "fvu": 0.28, "nmse": 0.2},
    {"series": "jumprelu QF w0=0.1", "l0": 40, "fvu": 0.12, "nmse": 0.05},
    {"series": "relu", "l0": NAN, "fvu": 0.5},  # skipped
]


def test_plot_pareto_png(tmp_path):
    out = plot_pareto(ROWS, tmp_path / "pareto.png", title="sweep")
    assert out == tmp_path / "pareto.png"
    assert out.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == ["pareto.png"]  # no temp file left over


def test_plot_pareto_svg_has_labels(tmp_path):
    out = plot_pareto(ROWS, tmp_path / "sub" / "pareto.svg")
    text = out.read_text(encoding="utf-8")
    assert "<svg" in text
    for needed in ("topk", "jumprelu QF w0=0.1", "L0 (mean active latents per token, log scale)"):
        assert needed in text
    assert "FVU (fraction of variance unexplained)" in text
    assert "relu</" not in text and "<!-- relu -->" not in text  # the all-NaN series is dropped


def test_plot_pareto_y_label_follows_metric(tmp_path):
    text = plot_pareto(ROWS, tmp_path / "p.svg", y="nmse").read_text(encoding="utf-8")
    assert "normalised MSE" in text
    # An unknown metric is labelled by its key; the series column can be renamed too.
    rows = [{"arch": r["series"], "l0": r["l0"], "ce_delta": r["fvu"]} for r in ROWS]
    text = plot_pareto(rows, tmp_path / "q.svg", y="ce_delta", series="arch").read_text("utf-8")
    assert "<!-- ce_delta -->" in text and "topk" in text


def test_plot_pareto_bad_suffix(tmp_path):
    with pytest.raises(DataError, match=r"\.png or \.svg"):
        plot_pareto(ROWS, tmp_path / "pareto.pdf")
    assert not (tmp_path / "pareto.pdf").exists()


def test_plot_pareto_no_plottable_rows(tmp_path):
    rows = [{"series": "a", "l0": NAN, "fvu": 0.1}, {"series": "b", "l0": 3, "fvu": None}]
    with pytest.raises(DataError, match="no sweep row"):
        plot_pareto(rows, tmp_path / "pareto.png")
    with pytest.raises(DataError):
        plot_pareto([], tmp_path / "pareto.png")
    assert not (tmp_path / "pareto.png").exists()


# --- plot_frequency_histograms -----------------------------------------------------------------


def _freqs(seed, n=200, dead=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([10 ** rng.uniform(-5, 0, size=n), np.zeros(dead)])


def test_histograms_png(tmp_path):
    panels = {
        name: [("L0=12.3", _freqs(i)), ("L0=40.0", _freqs(i + 10))]
        for i, name in enumerate(["relu", "gated", "jumprelu", "topk"])
    }
    out = plot_frequency_histograms(panels, tmp_path / "freq.png")
    assert out.read_bytes().startswith(b"\x89PNG")


def test_histograms_svg_dead_count_and_threshold(tmp_path):
    panels = {"jumprelu": [("L0=12.3", _freqs(0, dead=3)), ("L0=40.0", _freqs(1))]}
    text = plot_frequency_histograms(panels, tmp_path / "freq.svg").read_text(encoding="utf-8")
    assert "L0=12.3 (3 dead)" in text
    assert "L0=40.0 (" not in text  # no dead latents -> no suffix
    assert "10 %" in text
    assert "log10 firing frequency" in text and "latents" in text


def test_histograms_threshold_text_follows_threshold(tmp_path):
    panels = {"topk": [("k=4", _freqs(0))]}
    text = plot_frequency_histograms(panels, tmp_path / "f.svg", threshold=0.05).read_text(
        encoding="utf-8"
    )
    assert "5 %" in text and "10 %" not in text


def test_histograms_all_dead_still_plots(tmp_path):
    text = plot_frequency_histograms({"relu": [("L0=0", np.zeros(5))]}, tmp_path / "f.svg")
    assert "(5 dead)" in text.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "panels", [{}, {"relu": []}, {"relu": [("a", np.array([]))], "topk": [("b", [])]}]
)
def test_histograms_empty(tmp_path, panels):
    with pytest.raises(DataError, match="no firing frequencies"):
        plot_frequency_histograms(panels, tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()


def test_histograms_reject_counts_and_bad_threshold(tmp_path):
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        plot_frequency_histograms({"relu": [("a", np.array([3.0, 0.2]))]}, tmp_path / "f.png")
    with pytest.raises(DataError, match="threshold"):
        plot_frequency_histograms({"relu": [("a", _freqs(0))]}, tmp_path / "f.png", threshold=0)
    with pytest.raises(DataError, match=r"\.png or \.svg"):
        plot_frequency_histograms({"relu": [("a", _freqs(0))]}, tmp_path / "f.jpg")


# --- atomic write ------------------------------------------------------------------------------


def _boom(self, *args, **kwargs):
    raise RuntimeError("disk full")


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(Figure, "savefig", _boom)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_pareto(ROWS, tmp_path / "pareto.png")
    with pytest.raises(RuntimeError, match="disk full"):
        plot_frequency_histograms({"relu": [("a", _freqs(0))]}, tmp_path / "freq.svg")
    assert list(tmp_path.iterdir()) == []  # neither target nor temporary file


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "pareto.png"
    target.write_bytes(b"old figure")
    monkeypatch.setattr(Figure, "savefig", _boom)
    with pytest.raises(RuntimeError):
        plot_pareto(ROWS, target)
    assert target.read_bytes() == b"old figure"
    assert [p.name for p in tmp_path.iterdir()] == ["pareto.png"]


def test_pyplot_not_imported(tmp_path):
    # pyplot would pick a global backend and track figures; the module must not need it.
    import subprocess
    import sys

    code = (
        "import sys; from saeprobe.sweep.plots import plot_pareto; "
        f"plot_pareto([{{'series': 'a', 'l0': 2, 'fvu': 0.1}}], {str(tmp_path / 'p.png')!r}); "
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
