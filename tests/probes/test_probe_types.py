import numpy as np
import pytest

from saeprobe.errors import ConfigError, DataError
from saeprobe.probes import (
    DenseProbe,
    DiffOfMeansProbe,
    KSparseProbe,
    OneSparseProbe,
    RandomLatentsProbe,
    ReconstructionProbe,
)
from saeprobe.probes.metrics import auroc
from saeprobe.probes.selection import l1_select, latent_stats, select_latents


def _latents(n=160, m=40, seed=0, rate=0.15):
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    z = ((rng.random((n, m)) < rate) * rng.exponential(1.0, (n, m))).astype(np.float32)
    groups = [f"b{i // 4}" for i in range(n)]
    return z, y, groups


def test_one_sparse_finds_planted_latent_with_auroc_one():
    z, y, _ = _latents()
    z[:, 17] = y  # a latent equal to the label
    probe = OneSparseProbe().fit(z, y)
    assert probe.latent_ == 17 and probe.sign_ == 1
    assert probe.train_auroc_ == 1.0
    assert auroc(y, probe.decision_function(z)) == 1.0


def test_one_sparse_allows_negative_sign():
    z, y, _ = _latents()
    z[:, 5] = 1 - y  # fires on negatives only: perfectly anti-predictive
    probe = OneSparseProbe().fit(z, y)
    assert (probe.latent_, probe.sign_) == (5, -1)
    assert auroc(y, probe.decision_function(z)) == 1.0


def test_diff_of_means_direction_known():
    x = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 2.0], [6.0, 2.0]], dtype=np.float32)
    y = np.array([0, 0, 1, 1])
    probe = DiffOfMeansProbe().fit(x, y)
    np.testing.assert_allclose(probe.direction_, [4.0, 2.0])
    np.testing.assert_allclose(probe.decision_function(x), [0.0, 8.0, 20.0, 28.0])


def test_dense_and_reconstruction_fit_planted_direction():
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 60)
    x = rng.normal(size=(120, 6)) + 3.0 * y[:, None] * np.eye(6)[0]
    groups = [i // 3 for i in range(120)]
    for cls in (DenseProbe, ReconstructionProbe):
        probe = cls(seed=0).fit(x, y, groups)
        assert auroc(y, probe.decision_function(x)) > 0.95
        assert probe.c_ in probe.cs and probe.info()["cv_folds"] == 5


def test_dense_needs_groups_for_cv():
    x, y = np.eye(4), np.array([0, 1, 0, 1])
    with pytest.raises(DataError, match="base_id"):
        DenseProbe().fit(x, y)


@pytest.mark.parametrize("selection", ["mean_diff", "mean_diff_normalized", "l1"])
def test_k_larger_than_latents_raises(selection):
    z, y, groups = _latents(m=10)
    with pytest.raises(DataError, match=r"k=11 exceeds the 10 latents.*no larger than 10"):
        KSparseProbe(11, selection).fit(z, y, groups)


def test_k_larger_than_firing_latents_raises():
    z, y, groups = _latents(m=10)
    z[:, 3:] = 0.0  # only 3 latents ever fire on train
    with pytest.raises(DataError, match=r"k=4 exceeds the 3 latents .* fire"):
        KSparseProbe(4, "mean_diff").fit(z, y, groups)
    with pytest.raises(DataError, match=r"k=4 exceeds the 3 latents that fire"):
        RandomLatentsProbe(4).fit(z, y, groups)


def test_unknown_selection_raises():
    z, y, groups = _latents()
    with pytest.raises(ConfigError, match="unknown selection"):
        KSparseProbe(2, "top_magic").fit(z, y, groups)


def test_mean_diff_rankings():
    z, y, _ = _latents(m=6)
    z[:, :] = 0.0
    z[y == 1, 0] = 10.0  # big magnitude, fires on all positives
    z[y == 1, 1] = 0.5  # small magnitude, fires on all positives (same normalised diff)
    z[np.arange(len(y)) % 4 < 2, 2] = 100.0  # huge, fires equally on both classes
    z[y == 0, 3] = 1.0  # fires on all negatives: negative difference, |.| counts
    stats = latent_stats(z, y)
    assert list(select_latents(z, y, [2], "mean_diff", stats=stats)[2]) == [0, 3]
    # Normalised: latents 0, 1 and 3 all have |diff| = 1 after dividing by their scale.
    assert list(select_latents(z, y, [3], "mean_diff_normalized", stats=stats)[3]) == [0, 1, 3]
    # Latents 4 and 5 never fire: excluded, so at most 4 latents can be selected.
    with pytest.raises(DataError, match="k=5 exceeds the 4 latents"):
        select_latents(z, y, [5], "mean_diff", stats=stats)


def test_l1_selection_returns_exactly_k():
    rng = np.random.default_rng(1)
    n, m = 300, 60
    y = np.tile([0, 1], n // 2)
    z = ((rng.random((n, m)) < 0.3) * rng.exponential(1.0, (n, m))).astype(np.float32)
    for j in range(8):  # informative latents of decreasing strength
        z[:, j] += (y * (rng.random(n) < 0.8 / (j + 1))).astype(np.float32)
    ks = [1, 2, 3, 5, 8, 13]
    choices = l1_select(z, y, ks, prescreen=40)
    for k in ks:
        chosen = choices[k]
        assert chosen.latents.size == k
        assert np.unique(chosen.latents).size == k
        assert chosen.n_padded == 0
    assert choices[1].latents[0] == 0  # the strongest latent enters the path first


def test_random_latents_is_seeded():
    z, y, groups = _latents(m=40)
    z[:, 30:] = 0.0  # never firing: must never be drawn

    def draw(seed):
        return RandomLatentsProbe(5, latent_seed=seed, c=1.0).fit(z, y, groups).latents_

    np.testing.assert_array_equal(draw([0, 1]), draw([0, 1]))
    draws = [tuple(draw([s, 1])) for s in range(5)]
    assert len(set(draws)) > 1
    assert all(max(d) < 30 for d in draws)


def test_k_sparse_with_fixed_c_skips_cv(monkeypatch):
    from saeprobe.probes import cv

    def boom(*args, **kwargs):
        raise AssertionError("CV must not run when c is fixed")

    monkeypatch.setattr(cv, "select_c", boom)
    z, y, groups = _latents()
    probe = KSparseProbe(3, "mean_diff", c=1e4).fit(z, y, groups)
    assert probe.info()["c"] == 1e4 and len(probe.info()["latents"]) == 3
