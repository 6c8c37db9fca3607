"""SAELens cfg.json layouts read with known answers, without the SAELens package (the real package
is exercised in test_saelens_interop.py): the older TopK spelling, decoder-norm rescaling, the
folded input scale, log thresholds, and clear refusals."""

import json

import pytest
import torch
from safetensors.torch import save_file

from saeprobe.errors import FormatError
from saeprobe.sae.io import load_sae, trained_config

D_IN, D_SAE = 8, 24


def _weights(seed=0, **extra):
    g = torch.Generator().manual_seed(seed)
    w = {
        "W_enc": torch.randn(D_IN, D_SAE, generator=g),
        "W_dec": torch.randn(D_SAE, D_IN, generator=g) * 3,  # rows far from unit norm
        "b_enc": torch.randn(D_SAE, generator=g),
        "b_dec": torch.randn(D_IN, generator=g),
    }
    return w | extra


def _write(path, cfg, weights):
    path.mkdir(parents=True, exist_ok=True)
    (path / "cfg.json").write_text(json.dumps({"d_in": D_IN, "d_sae": D_SAE, **cfg}))
    save_file(weights, str(path / "sae_weights.safetensors"))
    return path


def _topk(x, w, k, rescale=False):
    z = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    norms = w["W_dec"].norm(dim=1)
    z = z * norms if rescale else z
    vals, idx = z.topk(k, dim=-1)
    f = torch.zeros_like(z).scatter(-1, idx, vals.relu())
    return (f / norms if rescale else f) @ w["W_dec"] + w["b_dec"]


@pytest.mark.parametrize("key", ["activation_fn_str", "activation_fn"])
def test_older_topk_layout_loads_as_topk(tmp_path, key):
    w = _weights()
    cfg = {"architecture": "standard", key: "topk", "activation_fn_kwargs": {"k": 4}}
    sae = load_sae(_write(tmp_path / "s", cfg, w))
    assert sae.architecture == "topk" and sae.cfg.k == 4
    x = torch.randn(32, D_IN)
    assert ((sae.encode(x) > 0).sum(-1) <= 4).all()
    torch.testing.assert_close(sae(x), _topk(x, w, 4), rtol=1e-5, atol=1e-5)
    assert trained_config(tmp_path / "s")["architecture"] == "topk"


def test_an_unknown_activation_fn_is_refused(tmp_path):
    cfg = {"architecture": "standard", "activation_fn_str": "tanh-relu"}
    with pytest.raises(FormatError, match="activation_fn 'tanh-relu' is not supported"):
        load_sae(_write(tmp_path / "s", cfg, _weights()))


def test_rescale_acts_by_decoder_norm_is_folded(tmp_path):
    w = _weights()
    cfg = {"architecture": "topk", "k": 5, "rescale_acts_by_decoder_norm": True}
    sae = load_sae(_write(tmp_path / "s", cfg, w))
    x = torch.randn(32, D_IN)
    torch.testing.assert_close(sae(x), _topk(x, w, 5, rescale=True), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))


@pytest.mark.parametrize("flag", ["expected_average_only_in", True])
def test_the_stored_input_scale_is_folded(tmp_path, flag):
    w, s = _weights(), 2.5
    path = _write(tmp_path / "s", {"architecture": "standard", "normalize_activations": flag}, w)
    (path / "activation_scaler.json").write_text(json.dumps({"scaling_factor": s}))
    sae = load_sae(path)
    x = torch.randn(16, D_IN)
    # SAELens: the weights read x * s and write x_hat * s.
    f = torch.relu((x * s - w["b_dec"]) @ w["W_enc"] + w["b_enc"])
    torch.testing.assert_close(sae.encode(x), f, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sae.decode(f), (f @ w["W_dec"] + w["b_dec"]) / s)


@pytest.mark.parametrize(
    "norm, scaler, match",
    [
        ("expected_average_only_in", None, "no activation_scaler.json"),
        ("expected_average_only_in", {"scaling_factor": None}, "not a positive number"),
        ("layer_norm", None, "normalises each token"),
        ("constant_norm_rescale", None, "normalises each token"),
    ],
)
def test_unusable_normalisation_is_a_one_line_error(tmp_path, norm, scaler, match):
    path = _write(tmp_path / "s", {"architecture": "standard", "normalize_activations": norm}, {})
    if scaler is not None:
        (path / "activation_scaler.json").write_text(json.dumps(scaler))
    with pytest.raises(FormatError, match=match) as err:
        load_sae(path)
    assert "\n" not in str(err.value)


def test_log_threshold_and_negative_thresholds(tmp_path):
    theta = torch.linspace(-0.5, 1.0, D_SAE)
    w = _weights(log_threshold=theta.clamp_min(1e-3).log())
    sae = load_sae(_write(tmp_path / "a", {"architecture": "jumprelu"}, w))
    torch.testing.assert_close(sae.threshold, theta.clamp_min(1e-3))
    # SAELens and Gemma Scope compute ReLU(z) * (z > theta): a negative theta acts as 0.
    sae = load_sae(_write(tmp_path / "b", {"architecture": "jumprelu"}, _weights(threshold=theta)))
    x = torch.randn(64, D_IN)
    z = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    torch.testing.assert_close(sae.encode(x), z.relu() * (z > theta), rtol=1e-5, atol=1e-5)


def test_a_saelens_batchtopk_checkpoint_loads_as_batchtopk(tmp_path):
    w = _weights(topk_threshold=torch.tensor(0.7, dtype=torch.float64))
    cfg = {"architecture": "batchtopk", "k": 2.5, "rescale_acts_by_decoder_norm": True}
    sae = load_sae(_write(tmp_path / "s", cfg, w))
    assert sae.architecture == "batchtopk" and sae.cfg.k == 2.5
    x = torch.randn(64, D_IN)
    z = ((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]) * w["W_dec"].norm(dim=1)
    f = z.relu() * (z > 0.7)
    torch.testing.assert_close(sae.encode(x), f, rtol=1e-5, atol=1e-5)


def test_an_unsupported_architecture_names_the_supported_ones(tmp_path):
    with pytest.raises(FormatError, match="'matching_pursuit' is not supported; supported: "):
        load_sae(_write(tmp_path / "s", {"architecture": "matching_pursuit"}, _weights()))
