import numpy as np
import pytest

from saeprobe.errors import DataError
from saeprobe.probes import cv, run_probe_suite
from saeprobe.probes.cv import group_folds, select_c
from saeprobe.probes.data import ProbeData, SaeFeatures
from saeprobe.probes.synthetic import make_synthetic


def test_group_folds_never_split_a_base_id():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 37, 400)
    y = rng.integers(0, 2, 400)
    folds = group_folds(y, [f"base{g}" for g in groups], n_splits=5, seed=3)
    assert len(folds) == 5
    seen = np.zeros(400, dtype=int)
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])
        seen[te] += 1
    assert (seen == 1).all()  # every row held out exactly once


def test_group_folds_with_few_groups_and_one_group():
    y = np.array([0, 1, 0, 1, 0, 1])
    assert len(group_folds(y, ["a", "a", "b", "b", "c", "c"], n_splits=5)) == 3
    with pytest.raises(DataError, match="at least 2"):
        group_folds(y, ["a"] * 6)


def test_select_c_breaks_saturated_auroc_ties_by_log_loss():
    # Perfectly separable by one feature: every C scores AUROC 1. By AUROC alone the smallest C
    # wins; the default breaks the tie by held-out log-loss, which falls as C grows here.
    y = np.tile([0, 1], 40)
    x = np.c_[y + 0.01 * np.arange(80), np.zeros(80)]
    groups = [i // 2 for i in range(80)]
    by_auroc = select_c(x, y, groups, cs=(0.01, 1.0, 100.0), criterion="auroc")
    assert by_auroc.mean_auroc == (1.0, 1.0, 1.0)
    assert by_auroc.c == 0.01
    default = select_c(x, y, groups, cs=(0.01, 1.0, 100.0))
    assert default.criterion == "auroc_then_log_loss"
    assert default.mean_log_loss[0] > default.mean_log_loss[1] > default.mean_log_loss[2]
    assert default.c == 100.0
    # A C with a higher CV AUROC beats a lower log-loss unless the criterion is log_loss.
    assert cv.choose_c([0.9, 1.0, 0.95], [0.1, 0.5, 0.05], "auroc_then_log_loss") == 1
    assert cv.choose_c([0.9, 1.0, 0.95], [0.1, 0.5, 0.05], "log_loss") == 2


def _small():
    return make_synthetic(120, 40, 40, d_model=8, d_sae=48, n_informative=4, seed=1)


def test_cv_only_ever_sees_training_rows(monkeypatch):
    data, saes = _small()
    n_train = len(data.y["train"])
    calls = []
    real = cv.select_c

    def spy(x, y, groups, **kwargs):
        calls.append((np.shape(x)[0], np.array(y).copy(), list(groups)))
        return real(x, y, groups, **kwargs)

    monkeypatch.setattr(cv, "select_c", spy)
    run_probe_suite(data, saes, ks=(1, 3), n_bootstrap=20)
    # dense + reconstruction + 3 selections x 2 ks + 2 random = 10 CV searches.
    assert len(calls) == 10
    for n, y, groups in calls:
        assert n == n_train
        np.testing.assert_array_equal(y, data.y["train"])
        assert groups == list(data.base_id["train"])


def test_perturbing_val_and_ood_changes_no_fitted_model():
    data, saes = _small()
    base = run_probe_suite(data, saes, ks=(1, 3), n_bootstrap=20)

    rng = np.random.default_rng(99)

    def scramble(arrays):
        return {
            s: (a if s == "train" else rng.permutation(a * 5.0 + 1.0, axis=0))
            for s, a in arrays.items()
        }

    y_flipped = {s: (v if s == "train" else 1 - np.asarray(v)) for s, v in data.y.items()}
    perturbed = ProbeData(
        X=scramble(data.X),
        y=y_flipped,
        source=data.source,
        transform=data.transform,
        base_id=data.base_id,
    )
    perturbed_saes = {n: SaeFeatures(Z=scramble(f.Z), R=scramble(f.R)) for n, f in saes.items()}
    other = run_probe_suite(perturbed, perturbed_saes, ks=(1, 3), n_bootstrap=20)

    # Every fitted detail (C, CV curve, latents, weights) and every train metric is unchanged,
    # except the operating point whose threshold is fixed on validation, by design.
    assert other.probe_info == base.probe_info

    def own(records):
        val_based = ("tpr_at_1pct_fpr_val_threshold", "fpr_at_val_threshold")
        return [{k: v for k, v in r.items() if k not in val_based} for r in records]

    assert own(other.find(split="train")) == own(base.find(split="train"))
    assert other.find(split="val") != base.find(split="val")
