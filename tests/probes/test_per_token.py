"""Per-token probes: planted-rule recovery, no leakage from val/OOD, the suite's records and
comparisons, and one-line errors."""

import numpy as np
import pytest

from saeprobe.errors import ConfigError, DataError
from saeprobe.probes import DenseProbe, run_probe_suite
from saeprobe.probes.metrics import auroc
from saeprobe.probes.per_token import PER_TOKEN_PROBES, PerTokenProbe, PerTokenSettings
from saeprobe.probes.per_token import probe as probe_module
from saeprobe.probes.per_token.suite import SaeTokenLatents, TokenInputs, fit_per_token_probes
from saeprobe.probes.per_token.synthetic import make_planted_tokens
from saeprobe.probes.per_token.tokens import TokenFeatures
from saeprobe.probes.synthetic import make_synthetic

FAST = PerTokenSettings(max_epochs=15, n_splits=3, weight_decays=[0.1, 0.01], train_seeds=[0])
# One planted token (max-type probes) or a weak run of 10 tokens (the rolling window's rule).
PEAK = {"signal": 6.0, "min_len": 8, "max_len": 40}
RUN = {"signal": 1.5, "run": 10, "min_len": 30, "max_len": 80}


@pytest.fixture(scope="module")
def planted():
    out = {}
    for name, kw in (("peak", PEAK), ("run", RUN)):
        train = make_planted_tokens(160, seed=0, **kw)
        test = make_planted_tokens(120, seed=1, base_offset=1000, **kw)
        out[name] = (train, test)
    return out


@pytest.mark.parametrize("kind", PER_TOKEN_PROBES)
def test_each_probe_recovers_a_planted_token_rule(planted, kind):
    (tokens, y, groups, pooled), (test, y_test, _, pooled_test) = planted[
        "run" if kind == "rolling_mean" else "peak"
    ]
    probe = PerTokenProbe(kind, FAST).fit(tokens, y, groups)
    score = auroc(y_test, probe.decision_function(test))
    assert score > 0.96, (kind, score)
    if kind != "rolling_mean":
        # The same rule read from mean-pooled vectors: a dense probe stays far from it.
        mean_pooled = DenseProbe().fit(pooled, y, groups).decision_function(pooled_test)
        assert auroc(y_test, mean_pooled) < 0.85
    info = probe.info()
    assert info["weight_decay"] in FAST.weight_decays and 1 <= info["epochs"] <= 15
    assert np.shape(info["cv_log_loss"]) == (info["cv_epochs_run"], 2)


def test_rolling_window_beats_a_single_token_max_on_a_weak_run(planted):
    (tokens, y, groups, _), (test, y_test, _, _) = planted["run"]
    fits = {
        k: PerTokenProbe(k, FAST).fit(tokens, y, groups) for k in ("rolling_mean", "max_of_logits")
    }
    aucs = {k: auroc(y_test, p.decision_function(test)) for k, p in fits.items()}
    assert aucs["rolling_mean"] > aucs["max_of_logits"] + 0.1


def _suite_inputs(seed=0):
    data, saes = make_synthetic(90, 40, 40, d_model=6, d_sae=24, n_informative=4, seed=1)
    dense, latents = {}, {}
    for i, split in enumerate(("train", "val", "ood")):
        n = len(data.y[split])
        tokens, *_ = make_planted_tokens(n, d=6, seed=10 * seed + i, max_len=10)
        dense[split] = tokens
        # Latent-like non-negative per-token values derived from the same tokens.
        latents[split] = TokenFeatures(
            np.maximum(np.c_[tokens.values, -tokens.values, tokens.values[:, :4] * 2], 0),
            tokens.offsets,
        )
    pooled_train = np.maximum.reduceat(
        latents["train"].values.astype(np.float32), latents["train"].offsets[:-1]
    )

    def columns(chosen):
        return {s: t.columns(chosen) for s, t in latents.items()}

    return (
        data,
        saes,
        TokenInputs(dense=dense, saes={"sae_a": SaeTokenLatents(pooled_train, columns)}),
    )


TINY = PerTokenSettings(max_epochs=3, n_splits=2, weight_decays=[0.1], train_seeds=[0, 1])


def test_no_per_token_probe_sees_val_or_ood(monkeypatch):
    data, saes, inputs = _suite_inputs()
    calls = []
    real = probe_module.fit_models

    def spy(tokens, y, head, **kw):
        calls.append((tokens.n_prompts, np.array(y).copy()))
        return real(tokens, y, head, **kw)

    monkeypatch.setattr(probe_module, "fit_models", spy)
    scored = fit_per_token_probes(
        inputs, data.y["train"], data.base_id["train"], probes=("ema", "attention"),
        settings=TINY, sae_k=4, sae_selection="mean_diff",
    )  # fmt: skip
    assert len(scored) == 4 and len(calls) == 8  # (CV search + refit) x 2 probes x 2 inputs
    for n, y in calls:
        assert n == len(data.y["train"])
        np.testing.assert_array_equal(y, data.y["train"])
    # Scrambling every val/OOD token changes no fitted detail, only the val/OOD scores.
    scrambled = TokenInputs(
        dense={
            s: t if s == "train" else TokenFeatures(t.values[::-1] * 3.0, t.offsets)
            for s, t in inputs.dense.items()
        },
        saes=inputs.saes,
    )
    again = fit_per_token_probes(
        scrambled, data.y["train"], data.base_id["train"], probes=("ema", "attention"),
        settings=TINY, sae_k=4, sae_selection="mean_diff",
    )  # fmt: skip
    for a, b in zip(scored, again, strict=True):
        assert a.info == b.info
        np.testing.assert_array_equal(a.scores["train"], b.scores["train"])
    assert not np.array_equal(scored[0].scores["ood"], again[0].scores["ood"])


def test_suite_records_seed_spread_comparisons_and_val_threshold():
    data, saes, inputs = _suite_inputs()
    scored = fit_per_token_probes(
        inputs, data.y["train"], data.base_id["train"], probes=("max_of_logits",),
        settings=TINY, sae_k=4, sae_selection="mean_diff",
    )  # fmt: skip
    res = run_probe_suite(
        data, saes, ks=(1, 3), selections=("mean_diff",), n_bootstrap=50, cs=(0.1, 1.0),
        n_splits=3, scored=scored,
    )  # fmt: skip
    token = res.find(probe="max_of_logits", sae=None)
    assert {r["split"] for r in token} == {"train", "val", "ood"}
    for r in token:
        assert r["n_train_seeds"] == 2
        assert r["train_seed_auroc_min"] <= r["train_seed_auroc_max"]
        assert 0 <= r["fpr_at_val_threshold"] <= 1
    assert res.find(probe="max_of_logits", sae="sae_a", k=4)
    # On val, the val threshold is the split's own threshold.
    for r in res.find(split="val"):
        assert r["tpr_at_1pct_fpr_val_threshold"] == r["tpr_at_1pct_fpr"]
        assert r["fpr_at_val_threshold"] <= 0.01 + 1e-12
    kinds = {c["kind"] for c in res.comparisons}
    assert kinds == {"vs_dense", "best_sae_vs_dense", "sae_vs_residual_aggregation"}
    for c in res.comparisons:
        assert c["delta"] == pytest.approx(c["auroc_a"] - c["auroc_b"])
        again = res.compare(c["probe_a"], c["probe_b"], c["split"])
        assert (again["ci_low"], again["ci_high"]) == (c["ci_low"], c["ci_high"])
    best = [c for c in res.comparisons if c["kind"] == "best_sae_vs_dense" and c["split"] == "val"]
    candidates = [
        r["auroc"]
        for r in res.find(split="val", sae="sae_a")
        if r["probe"] in ("one_sparse", "k_sparse", "max_of_logits")
    ]
    assert best[0]["auroc_a"] == max(candidates)  # chosen on validation, never OOD


def test_sae_seed_spread():
    data, saes = make_synthetic(90, 40, 40, d_model=6, d_sae=24, n_informative=4, seed=1,
                                sae_names=("a", "a@seed1"))  # fmt: skip
    res = run_probe_suite(
        data, saes, ks=(2,), selections=("mean_diff",), n_bootstrap=20, cs=(1.0,), n_splits=2,
        sae_seeds={"a": ["a@seed1"]},
    )  # fmt: skip
    assert {r["sae"] for r in res.results} == {None, "a"}
    assert {r["sae"] for r in res.sae_seed_results} == {"a@seed1"}
    for r in res.find(sae="a"):
        copy = next(
            c["auroc"]
            for c in res.sae_seed_results
            if (c["probe"], c["k"], c["selection"], c["split"])
            == (r["probe"], r["k"], r["selection"], r["split"])
        )
        assert r["n_sae_seeds"] == 2
        assert r["sae_seed_auroc_min"] == min(r["auroc"], copy)
        assert r["sae_seed_auroc_max"] == max(r["auroc"], copy)


def test_bad_input_is_a_one_line_error():
    tokens, y, groups, pooled = make_planted_tokens(40, max_len=8)
    with pytest.raises(DataError, match=r"needs per-token activations.*got ndarray") as err:
        PerTokenProbe("ema", TINY).fit(pooled, y, groups)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match=r"window 50 is longer than every training prompt"):
        PerTokenProbe("rolling_mean", PerTokenSettings(window=50)).fit(tokens, y, groups)
    with pytest.raises(ConfigError, match=r"unknown per-token probe 'max_of_logit'"):
        PerTokenProbe("max_of_logit")
    inputs = TokenInputs(dense={"train": tokens})
    with pytest.raises(DataError, match=r"window 9 is longer than every prompt .*8 tokens"):
        fit_per_token_probes(inputs, y, groups, settings=PerTokenSettings(window=9))
    with pytest.raises(ConfigError, match=r"unknown per-token probe\(s\) \['lstm'\]"):
        fit_per_token_probes(inputs, y, groups, probes=("lstm",))


def _naive_scores(kind, a, lengths, alpha=0.5, window=3, tau=5.0):
    """The module docstring's formulas, one prompt and one token at a time (a: [b, L, P])."""
    out = []
    for row, n in zip(a, lengths, strict=True):
        s = [list(map(float, t)) for t in row[:n]]
        if kind == "max_of_logits":
            out.append(max(t[0] for t in s))
        elif kind == "softmax":
            w = np.exp(np.array([t[0] for t in s]) / tau)
            out.append(float((w / w.sum()) @ np.array([t[0] for t in s])))
        elif kind == "attention":
            w = np.exp(np.array([t[0] for t in s]))
            out.append(float((w / w.sum()) @ np.array([t[1] for t in s])))
        elif kind == "multimax":
            out.append(sum(max(t[h] for t in s) for h in range(len(s[0]))))
        elif kind == "ema":
            e, best = 0.0, -np.inf
            for t in s:
                e = alpha * t[0] + (1 - alpha) * e
                best = max(best, e)
            out.append(best)
        else:
            x = [t[0] for t in s]
            windows = [np.mean(x[i : i + window]) for i in range(len(x) - window + 1)]
            out.append(max(windows) if windows else np.mean(x))
    return np.array(out)


@pytest.mark.parametrize("kind", PER_TOKEN_PROBES)
def test_heads_match_the_formulas(kind):
    import torch

    from saeprobe.probes.per_token.heads import make_head

    head = make_head(kind, multimax_heads=3, window=3)
    lengths = torch.tensor([9, 1, 2, 5])
    a = torch.randn(4, 9, 1, head.n_projections, generator=torch.Generator().manual_seed(0))
    mask = torch.arange(9)[None, :] < lengths[:, None]
    got = head(a, mask, lengths)[:, 0].numpy()
    want = _naive_scores(kind, a[:, :, 0].numpy(), lengths.tolist())
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
