"""`saeprobe evaluate`: known answers (identity and mean-only SAEs), the spliced-model effect on
an encoder and on a causal LM, and one-line errors."""

import json

import numpy as np
import pytest
import torch
from harvest_helpers import cli, small_harvest
from known_saes import identity_sae, mean_only_sae

from saeprobe.activations.store import ActivationStore
from saeprobe.errors import DataError
from saeprobe.metrics.evaluate import EvaluateConfig, evaluate_sae, lm_batches, model_effect
from saeprobe.sae.io import save_sae

REQUIRED = ("l0", "fvu", "nmse", "dead_fraction", "n_high_frequency", "frac_high_frequency")
LM_KEYS = ("delta_lm_loss", "ce_loss_recovered", "kl_divergence")


def test_identity_sae_has_zero_fvu_and_unit_embedding_cosine(store, tmp_path):
    save_sae(identity_sae(384), tmp_path / "identity")
    out = tmp_path / "ev.json"
    r = cli(
        "evaluate",
        "--sae",
        str(tmp_path / "identity"),
        "--acts",
        str(store),
        "--layer",
        "3",
        "--json",
        str(out),
        "--eval-tokens",
        "1000",
        "--lm-windows",
        "8",
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert all(k in report for k in REQUIRED)
    assert report["fvu"] == pytest.approx(0, abs=1e-12) and report["nmse"] == pytest.approx(
        0, abs=1e-12
    )
    assert report["cosine"] == pytest.approx(1.0) and report["eval_rows"] == [2000, 3000]
    assert report["embedding_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert all(report[k] is None for k in LM_KEYS) and "no LM head" in report["lm_loss_reason"]
    freqs = np.load(report["frequencies_file"])
    assert freqs.shape == (768,) and 0 <= freqs.min() and freqs.max() <= 1


def test_mean_only_sae_has_fvu_one_and_is_all_dead(store, tmp_path):
    acts = ActivationStore(store).activations(slice(2000, 3000), 3).double()
    save_sae(mean_only_sae(acts.mean(0).float()), tmp_path / "mean")
    cfg = EvaluateConfig(sae=tmp_path / "mean", acts=store, layer=3, eval_tokens=1000, lm=False)
    report = evaluate_sae(cfg)
    assert report["fvu"] == pytest.approx(1.0, abs=1e-5)
    expected_nmse = float((acts - acts.mean(0)).pow(2).sum() / acts.pow(2).sum())
    assert report["nmse"] == pytest.approx(expected_nmse, rel=1e-5)


def test_causal_lm_identity_splice_has_zero_delta_lm_loss(minilm, corpus, tiny_llama, tmp_path):
    small_harvest(tiny_llama, corpus, tmp_path / "llama", layers=[1], max_tokens=1500)
    save_sae(identity_sae(32), tmp_path / "identity")
    cfg = EvaluateConfig(
        sae=tmp_path / "identity",
        acts=tmp_path / "llama",
        eval_tokens=500,
        lm_windows=8,
        model=str(tiny_llama.model.name_or_path),
    )
    report = evaluate_sae(cfg)
    assert report["fvu"] == pytest.approx(0, abs=1e-12)
    assert report["delta_lm_loss"] == pytest.approx(0, abs=1e-6)
    assert report["kl_divergence"] == pytest.approx(0, abs=1e-6)
    assert report["ce_loss_recovered"] == pytest.approx(1.0, abs=1e-4)
    assert report["ce_clean"] > 0 and report["embedding_cosine"] is None
    assert report["lm_texts_held_out"]

    save_sae(mean_only_sae(torch.zeros(32)), tmp_path / "zero")
    zero = evaluate_sae(cfg.model_copy(update={"sae": tmp_path / "zero"}))
    assert zero["ce_loss_recovered"] == pytest.approx(0.0, abs=1e-6)  # same as zero ablation
    assert zero["delta_lm_loss"] == pytest.approx(zero["ce_zero_ablation"] - zero["ce_clean"])


def test_sae_for_another_width_is_a_one_line_error(store, tmp_path):
    save_sae(identity_sae(16), tmp_path / "narrow")
    r = cli(
        "evaluate",
        "--sae",
        str(tmp_path / "narrow"),
        "--acts",
        str(store),
        "--layer",
        "3",
        "--json",
        str(tmp_path / "x.json"),
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "d_in=16" in r.stderr and "width 384" in r.stderr
    assert not (tmp_path / "x.json").exists()


def test_multi_layer_store_needs_a_layer(store, tmp_path):
    save_sae(identity_sae(384), tmp_path / "identity")
    with pytest.raises(DataError, match="choose one with --layer"):
        evaluate_sae(EvaluateConfig(sae=tmp_path / "identity", acts=store, lm=False))


def test_tokens_the_harvest_dropped_as_outliers_are_not_spliced(corpus, tiny_llama, tmp_path):
    small_harvest(tiny_llama, corpus, tmp_path / "o", layers=[1], max_tokens=1500,
                  outlier_factor=1.05)  # fmt: skip
    assert ActivationStore(tmp_path / "o").manifest.n_outliers_excluded > 0
    save_sae(mean_only_sae(torch.zeros(32)), tmp_path / "zero")
    cfg = EvaluateConfig(sae=tmp_path / "zero", acts=tmp_path / "o", eval_tokens=500,
                         lm_windows=8, model=str(tiny_llama.model.name_or_path))  # fmt: skip
    report = evaluate_sae(cfg)
    store = ActivationStore(tmp_path / "o")
    batches, held_out = lm_batches(tiny_llama, store, None, None, 8, 16)
    unfiltered = model_effect(mean_only_sae(torch.zeros(32)), 1, tiny_llama, batches, held_out)
    assert report["lm_n_outlier_positions"] > 0 and unfiltered["lm_n_outlier_positions"] == 0
    assert (
        report["lm_n_spliced_positions"] + report["lm_n_outlier_positions"]
        == unfiltered["lm_n_spliced_positions"]
    )
    assert report["delta_lm_loss"] != pytest.approx(unfiltered["delta_lm_loss"])
