"""Finetuning (`RunSpec.init_from`): a run starts from exactly the function of the saved SAE, the
settings it leaves out are inherited from that SAE, and settings that would silently change the
function are one-line errors."""

import json

import numpy as np
import pytest
import torch

from saeprobe.data.planted import PlantedConfig, PlantedDictionary, PlantedSource
from saeprobe.errors import ConfigError
from saeprobe.sae.config import build_config
from saeprobe.sae.io import load_sae, save_sae
from saeprobe.sae.registry import create_sae
from saeprobe.sweep.config import SweepConfig
from saeprobe.sweep.runner import run_sweep
from saeprobe.train import RunSpec, TensorSource, TrainConfig, Trainer, estimate_scale
from saeprobe.train.finetune import load_into, with_inherited
from saeprobe.train.from_store import StoreTrainConfig, train_from_store

D_IN, D_SAE = 16, 32
# One step at a negligible learning rate: the finetuned SAE is the SAE it started from.
NO_LEARNING = {"steps": 1, "lr": 1e-12, "lr_warmup_steps": 0}


def _planted(rows, scale=1.0, seed=0):
    dictionary = PlantedDictionary(PlantedConfig(d=D_IN, n_features=48))
    return dictionary.sample(rows, torch.Generator().manual_seed(seed)) * scale


def _cfg(**kw):
    base = dict(steps=30, lr=3e-3, lr_warmup_steps=5, progress=False, log_every=5)
    return TrainConfig(**(base | kw))


def _finetune(init_from, **sae):
    arch = {"architecture": "topk", "d_in": D_IN, "d_sae": D_SAE}
    return RunSpec(name="ft", sae=arch | sae, init_from=init_from)


def _fit(spec, **cfg):
    source = PlantedSource(PlantedDictionary(PlantedConfig(d=D_IN, n_features=48)), 64, seed=0)
    return Trainer(_cfg(**cfg), [spec]).fit(source)


def _support(f):
    return f != 0


def _gemma_scope(path, d_in, d_sae):
    """A Gemma Scope params.npz: JumpReLU without pre-encoder bias, per-latent thresholds."""
    g = torch.Generator().manual_seed(0)
    params = {
        "W_enc": torch.randn(d_in, d_sae, generator=g) / d_in**0.5,
        "W_dec": torch.randn(d_sae, d_in, generator=g),
        "b_enc": torch.randn(d_sae, generator=g) * 0.1,
        "b_dec": torch.randn(d_in, generator=g) * 3,
        "threshold": torch.rand(d_sae, generator=g) * 0.5,
    }
    path.mkdir()
    np.savez(path / "params.npz", **{k: v.numpy() for k, v in params.items()})
    return path


# ----- settings that change the SAE's function -----------------------------------------------
def test_a_relu_sae_finetuned_as_topk_is_a_one_line_error(tmp_path):
    save_sae(create_sae({"architecture": "relu", "d_in": D_IN, "d_sae": D_SAE}), tmp_path / "r")
    with pytest.raises(ConfigError, match="architecture is 'topk'.*'relu'") as err:
        _fit(_finetune(tmp_path / "r", k=4))
    assert "\n" not in str(err.value) and "run 'ft'" in str(err.value)


def test_a_gemma_scope_sae_finetuned_with_pre_encoder_bias_is_a_one_line_error(tmp_path):
    gemma = _gemma_scope(tmp_path / "gs", D_IN, D_SAE)
    spec = RunSpec(
        name="ft", sae={"architecture": "jumprelu", "d_in": D_IN, "d_sae": D_SAE}, init_from=gemma
    )
    with pytest.raises(ConfigError, match="apply_b_dec_to_input is True .* False") as err:
        _fit(spec)
    assert "\n" not in str(err.value) and "inherit" in str(err.value)


def test_a_topk_sae_finetuned_with_another_k_is_a_one_line_error(tmp_path):
    save_sae(create_sae({"architecture": "topk", "d_in": D_IN, "d_sae": D_SAE, "k": 4}), tmp_path)
    with pytest.raises(ConfigError, match="k is 8 .* k=4"):
        _fit(_finetune(tmp_path, k=8))


def test_train_store_finetune_inherits_the_settings_of_a_gemma_scope_sae(store, tmp_path):
    gemma = _gemma_scope(tmp_path / "gs", 384, 64)
    cfg = StoreTrainConfig(
        acts=store,
        out=tmp_path / "ft",
        layer=3,
        init_from=gemma,
        batch_size=256,
        eval_batches=1,
        train=NO_LEARNING | {"progress": False},
    )
    report = train_from_store(cfg)  # architecture, d_sae and the pre-encoder bias all inherited
    tuned, original = load_sae(tmp_path / "ft"), load_sae(gemma)
    assert report["architecture"] == "jumprelu" and tuned.cfg.d_sae == 64
    assert tuned.cfg.apply_b_dec_to_input is False
    from saeprobe.activations.store import ActivationStore

    x = ActivationStore(store).activations(slice(0, 512), layer=3)
    agree = (_support(tuned.encode(x)) == _support(original.encode(x))).float().mean()
    assert agree > 0.999


def test_sweep_finetune_inherits_the_settings_of_a_gemma_scope_sae(tmp_path, monkeypatch):
    monkeypatch.setenv("SAEPROBE_CACHE", str(tmp_path / "cache"))
    gemma = _gemma_scope(tmp_path / "gs", 384, 64)
    cfg = build_config(
        SweepConfig,
        {
            "stores": {"s": {"model": "minilm", "layer": 3, "max_tokens": 900, "context": 32}},
            "d_sae": 64,
            "batch_size": 128,
            "eval_tokens": 256,
            "lm_windows": 0,
            "train": {"lr": 1e-12, "lr_warmup_steps": 0},
            "phases": [
                {
                    "name": "p",
                    "store": "s",
                    "steps": 1,
                    "grid": [{"name": "ft", "architecture": "jumprelu", "init_from": str(gemma)}],
                }
            ],
        },
    )
    run_sweep(cfg, tmp_path / "out", progress=False, log=lambda m: None)
    tuned, original = load_sae(tmp_path / "out" / "saes" / "ft"), load_sae(gemma)
    assert tuned.cfg.apply_b_dec_to_input is False
    x = torch.randn(256, 384) * 5
    agree = (_support(tuned.encode(x)) == _support(original.encode(x))).float().mean()
    assert agree > 0.999


# ----- BatchTopK, saved as a JumpReLU with one global threshold -------------------------------
@pytest.fixture
def saved_batchtopk(tmp_path):
    spec = RunSpec(
        name="b", sae={"architecture": "batchtopk", "d_in": D_IN, "d_sae": D_SAE, "k": 4}
    )
    _fit(spec).save("b", tmp_path / "b")
    return tmp_path / "b"


def test_a_saved_batchtopk_records_what_it_was_trained_as(saved_batchtopk):
    cfg = json.loads((saved_batchtopk / "cfg.json").read_text())
    assert cfg["architecture"] == "jumprelu" and cfg["saeprobe"]["config"]["architecture"] == (
        "jumprelu"
    )
    assert cfg["saeprobe"]["trained_as"]["architecture"] == "batchtopk"
    assert cfg["saeprobe"]["trained_as"]["k"] == 4
    assert load_sae(saved_batchtopk).architecture == "jumprelu"  # inference is unchanged
    assert with_inherited({}, saved_batchtopk) == {
        "architecture": "batchtopk",
        "d_sae": D_SAE,
        "apply_b_dec_to_input": True,
        "k": 4,
    }


def test_a_saved_batchtopk_finetunes_as_batchtopk_from_its_exact_function(saved_batchtopk):
    saved = load_sae(saved_batchtopk)
    data = _planted(512, scale=7.0, seed=1)
    scale = estimate_scale(TensorSource(data, 64), 8)
    settings = with_inherited({"d_in": D_IN}, saved_batchtopk)
    fresh = create_sae(settings)
    load_into(fresh, saved_batchtopk, scale, run="ft")
    # Latents are rescaled by one factor so the decoder rows get unit norm; the threshold follows.
    factor = float(saved.W_dec.detach().norm(dim=1).mean()) / scale
    assert float(fresh.threshold) == pytest.approx(
        float(saved.threshold.detach()[0]) * factor, rel=1e-5
    )
    assert torch.equal(_support(fresh.encode(data / scale)), _support(saved.encode(data)))
    assert torch.allclose(fresh(data / scale) * scale, saved(data), rtol=1e-4, atol=1e-4)
    tuned = Trainer(_cfg(steps=3), [RunSpec(name="ft", sae=settings, init_from=saved_batchtopk)])
    result = tuned.fit(TensorSource(data, 64))  # used to crash on the threshold's shape
    assert float(result.saes["ft"].threshold) > 0


def test_a_jumprelu_with_per_latent_thresholds_finetuned_as_batchtopk_is_an_error(tmp_path):
    gemma = _gemma_scope(tmp_path / "gs", D_IN, D_SAE)
    sae = {"architecture": "batchtopk", "d_in": D_IN, "d_sae": D_SAE, "k": 4}
    spec = RunSpec(name="ft", sae=sae | {"apply_b_dec_to_input": False}, init_from=gemma)
    with pytest.raises(ConfigError, match="finetune it as jumprelu") as err:
        _fit(spec)
    assert "\n" not in str(err.value)


# ----- TopK and decoder-row norms -------------------------------------------------------------
def test_topk_finetuned_on_another_scale_selects_the_same_latents_at_the_start(tmp_path):
    first = _planted(2048, scale=50.0)
    spec = RunSpec(name="t", sae={"architecture": "topk", "d_in": D_IN, "d_sae": D_SAE, "k": 4})
    Trainer(_cfg(), [spec]).fit(TensorSource(first, 128)).save("t", tmp_path / "t")
    saved = load_sae(tmp_path / "t")
    norms = saved.W_dec.norm(dim=1)
    assert norms.min() > 10 and torch.allclose(norms, norms.mean(), rtol=1e-4)  # uniform, not 1

    second = _planted(512, scale=0.2, seed=1)
    scale = estimate_scale(TensorSource(second, 64), 8)
    fresh = create_sae(spec.sae)
    load_into(fresh, tmp_path / "t", scale, run="ft")
    assert torch.allclose(fresh.W_dec.norm(dim=1), torch.ones(D_SAE), atol=1e-5)
    assert torch.equal(_support(fresh.encode(second / scale)), _support(saved.encode(second)))


def test_topk_with_unequal_decoder_norms_is_a_one_line_error(tmp_path):
    sae = create_sae({"architecture": "topk", "d_in": D_IN, "d_sae": D_SAE, "k": 4}, seed=0)
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(D_SAE, 1, generator=torch.Generator().manual_seed(0)) + 0.5)
    save_sae(sae, tmp_path)
    with pytest.raises(ConfigError, match="unequal norms.*unit norm.*which latents") as err:
        _fit(_finetune(tmp_path, k=4))
    assert "\n" not in str(err.value)
