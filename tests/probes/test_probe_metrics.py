import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from saeprobe.errors import DataError
from saeprobe.probes.metrics import (
    auroc,
    auroc_columns,
    bootstrap_auroc,
    evaluate_scores,
    group_aurocs,
    rates_at_threshold,
    threshold_at_fpr,
    tpr_at_fpr,
)


def _tied_case(seed: int, n: int = 80):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    # Few distinct values: most comparisons are ties, the case a naive AUROC gets wrong.
    scores = rng.integers(0, 4, n).astype(float) + 0.5 * y * rng.integers(0, 2, n)
    return y, scores


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_sklearn_with_ties(seed):
    y, scores = _tied_case(seed)
    assert auroc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_auroc_known_values():
    assert auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert auroc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert auroc([0, 1], [5.0, 5.0]) == 0.5  # a tie counts one half


def test_auroc_columns_matches_per_column():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    y[:2] = [0, 1]
    # Sparse non-negative columns with many exact zeros, like SAE latents.
    mat = (rng.random((60, 30)) < 0.2) * rng.integers(1, 4, (60, 30)).astype(np.float32)
    mat[:, 0] = 0.0  # a constant column: AUROC exactly 0.5
    expected = [roc_auc_score(y, mat[:, j]) for j in range(30)]
    np.testing.assert_allclose(auroc_columns(mat, y), expected, atol=1e-12)


def test_one_class_raises_naming_split_and_fix():
    with pytest.raises(DataError, match=r"split 'val' has only negative.*add positive"):
        auroc([0, 0, 0], [0.1, 0.2, 0.3], split="val")
    with pytest.raises(DataError, match=r"split 'ood' has only positive.*add negative"):
        evaluate_scores([1, 1], [0.1, 0.2], split="ood")


def test_nan_scores_raise():
    with pytest.raises(DataError, match="NaN"):
        auroc([0, 1], [0.1, float("nan")])


def test_bootstrap_contains_point_and_is_seeded():
    y, scores = _tied_case(1, n=200)
    point = auroc(y, scores)
    a = bootstrap_auroc(y, scores, n_bootstrap=300, seed=7)
    b = bootstrap_auroc(y, scores, n_bootstrap=300, seed=7)
    c = bootstrap_auroc(y, scores, n_bootstrap=300, seed=8)
    assert a.low <= point <= a.high
    assert a.low < a.high
    np.testing.assert_array_equal(a.replicates, b.replicates)
    assert not np.array_equal(a.replicates, c.replicates)


def test_bootstrap_replicates_are_exact_aurocs_of_stratified_resamples():
    # Re-derive one block's first resample by hand: same random stream, plain AUROC.
    y, scores = _tied_case(2, n=50)
    boot = bootstrap_auroc(y, scores, n_bootstrap=3, seed=11)
    rng = np.random.default_rng(11)
    pos, neg = scores[y == 1], scores[y == 0]
    pos_draw = rng.integers(0, pos.size, size=(3, pos.size))
    neg_draw = rng.integers(0, neg.size, size=(3, neg.size))
    for b in range(3):
        s = np.concatenate([pos[pos_draw[b]], neg[neg_draw[b]]])
        lab = np.r_[np.ones(pos.size), np.zeros(neg.size)]
        assert boot.replicates[b] == pytest.approx(roc_auc_score(lab, s), abs=1e-12)


def test_bootstrap_pairs_resamples_across_score_vectors():
    y, scores = _tied_case(3, n=100)
    same = bootstrap_auroc(y, scores, n_bootstrap=200, seed=0)
    shifted = bootstrap_auroc(y, scores * 2 + 1, n_bootstrap=200, seed=0)
    # A monotone transform has the same AUROC on every (shared) resample.
    np.testing.assert_allclose(same.replicates, shifted.replicates, atol=1e-12)


def test_tpr_at_fpr_known_answer():
    # 200 negatives (scores 0..199): 1 % FPR allows 2 false positives.
    neg = np.arange(200, dtype=float)
    pos = np.array([300.0, 250.0, 198.5, 197.5, 10.0])
    y = np.r_[np.zeros(200), np.ones(5)].astype(int)
    s = np.r_[neg, pos]
    # Lowest admissible threshold 197.5: flags negatives 198, 199 (FPR exactly 1 %) and
    # positives 300, 250, 198.5, 197.5 -> 4/5. Threshold 197 would flag a third negative.
    assert tpr_at_fpr(y, s, 0.01) == pytest.approx(0.8)
    # Zero false positives allowed: threshold above 199 -> 300, 250 -> 2/5.
    assert tpr_at_fpr(y, s, 0.0) == pytest.approx(0.4)


def test_tpr_at_fpr_ties_are_flagged_together():
    # Every score equal: flagging any row flags all negatives (FPR 1), so TPR at 1 % is 0.
    assert tpr_at_fpr([0] * 50 + [1] * 5, [1.0] * 55, 0.01) == 0.0


def test_group_aurocs_single_class_convention():
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.2, 0.1, 0.3, 0.7, 0.6, 0.4])
    groups = ["jb", "jb", "jb", "hard", "hard", "hard", "mix", "mix"]
    rows = {r["group"]: r for r in group_aurocs(y, s, groups)}
    # Positive-only group: its positives against all negatives of the split (indices 3,4,5,7).
    jb = rows["jb"]
    assert jb["reference"] == "split_negatives"
    assert (jb["n"], jb["n_pos"]) == (7, 3)
    assert jb["auroc"] == pytest.approx(
        roc_auc_score([1, 1, 1, 0, 0, 0, 0], [0.9, 0.8, 0.2, 0.1, 0.3, 0.7, 0.4])
    )
    # Negative-only group: all positives of the split (0,1,2,6) against its negatives.
    hard = rows["hard"]
    assert hard["reference"] == "split_positives"
    assert (hard["n"], hard["n_pos"]) == (7, 4)
    assert hard["auroc"] == pytest.approx(
        roc_auc_score([1, 1, 1, 1, 0, 0, 0], [0.9, 0.8, 0.2, 0.6, 0.1, 0.3, 0.7])
    )
    # Mixed group: on its own rows.
    assert rows["mix"]["reference"] == "group"
    assert (rows["mix"]["n"], rows["mix"]["n_pos"], rows["mix"]["auroc"]) == (2, 1, 1.0)


def test_grouped_bootstrap_is_wider_when_rows_repeat_their_group():
    """Five identical copies of each base prompt add no information: a row bootstrap treats
    them as independent and narrows the interval; the cluster bootstrap does not."""
    rng = np.random.default_rng(0)
    y = np.repeat(rng.integers(0, 2, 60), 5)
    scores = np.repeat(rng.normal(size=60), 5) + y
    groups = np.repeat(np.arange(60), 5)
    rows = bootstrap_auroc(y, scores, n_bootstrap=400, seed=1)
    grouped = bootstrap_auroc(y, scores, n_bootstrap=400, seed=1, groups=groups)
    point = auroc(y, scores)
    assert grouped.low <= point <= grouped.high
    assert (grouped.high - grouped.low) > 1.5 * (rows.high - rows.low)
    again = bootstrap_auroc(y, scores, n_bootstrap=400, seed=1, groups=groups)
    np.testing.assert_array_equal(again.replicates, grouped.replicates)


def test_grouped_bootstrap_with_one_row_per_group_matches_a_plain_weighted_auroc():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 80)
    scores = rng.normal(size=80) + y
    boot = bootstrap_auroc(y, scores, n_bootstrap=50, seed=2, groups=np.arange(80))
    # Replicate 0 recomputed by hand: the same draws, expanded into rows, through sklearn.
    draws = np.random.default_rng(2).integers(0, 80, size=(50, 80))[0]
    from sklearn.metrics import roc_auc_score

    expected = roc_auc_score(y[draws], scores[draws]) if 0 < y[draws].sum() < 80 else None
    assert expected is not None and boot.replicates[0] == pytest.approx(expected, abs=1e-12)


def _brute_val_threshold_rates(y_val, s_val, y_ood, s_ood, max_fpr):
    """Every candidate threshold (each val score, or +inf = flag nothing), flag score >= t:
    keep those whose val FPR is within max_fpr, take the lowest, apply it to OOD."""
    feasible = []
    for t in sorted(set(s_val.tolist())) + [np.inf]:
        fpr_val = np.mean(s_val[y_val == 0] >= t)
        if fpr_val <= max_fpr + 1e-12:
            feasible.append(t)
    t = min(feasible)
    return np.mean(s_ood[y_ood == 1] >= t), np.mean(s_ood[y_ood == 0] >= t), t


@pytest.mark.parametrize("seed", range(4))
def test_val_threshold_tpr_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    y_val, y_ood = rng.integers(0, 2, 300), rng.integers(0, 2, 400)
    y_val[:2] = y_ood[:2] = [0, 1]
    # Rounded scores make ties; OOD is shifted, so its FPR at the val threshold is not 1 %.
    s_val = np.round(rng.normal(size=300) + 2.0 * y_val, 1)
    s_ood = np.round(rng.normal(size=400) + 1.0 * y_ood + 0.8, 1)
    for max_fpr in (0.0, 0.01, 0.05):
        tpr, fpr, t = _brute_val_threshold_rates(y_val, s_val, y_ood, s_ood, max_fpr)
        threshold = threshold_at_fpr(y_val, s_val, max_fpr)
        assert threshold == t
        assert rates_at_threshold(y_ood, s_ood, threshold) == pytest.approx((tpr, fpr))
        m = evaluate_scores(y_ood, s_ood, split="ood", n_bootstrap=5, max_fpr=max_fpr,
                            val_threshold=threshold)  # fmt: skip
        assert (m.tpr_at_1pct_fpr_val_threshold, m.fpr_at_val_threshold) == pytest.approx(
            (tpr, fpr)
        )
        # On the split that set it, the threshold is the own-split operating point.
        own = evaluate_scores(y_val, s_val, split="val", n_bootstrap=5, max_fpr=max_fpr,
                              val_threshold=threshold)  # fmt: skip
        assert own.tpr_at_1pct_fpr_val_threshold == own.tpr_at_1pct_fpr
    # The shifted OOD negatives breach the 1 % budget at the val threshold.
    assert _brute_val_threshold_rates(y_val, s_val, y_ood, s_ood, 0.01)[1] > 0.01
