import pytest
import torch

from saeprobe.errors import ConfigError, DataError
from saeprobe.sae import StepContext, architectures, create_sae, make_config
from tests.conftest import ARCH_KW, sae_config

VARIANTS = list(ARCH_KW)


def test_registry_lists_every_architecture():
    assert architectures() == ["batchtopk", "gated", "jumprelu", "relu", "topk"]


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ConfigError, match="unknown SAE architecture 'foo'.*jumprelu"):
        make_config({"architecture": "foo", "d_in": 4, "d_sae": 8})


@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes_and_finite_gradients(variant):
    sae = create_sae(sae_config(variant), seed=0)
    x = torch.randn(32, 16)
    f = sae.encode(x)
    assert f.shape == (32, 64) and (f >= 0).all()
    assert sae(x).shape == x.shape
    dead = torch.zeros(64, dtype=torch.bool)
    dead[:10] = True
    out = sae.training_step(x, StepContext(1.0, dead))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert out.fire_counts.shape == (64,)
    for name, p in sae.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("variant", ["topk", "batchtopk"])
def test_topk_variants_keep_k_per_row_on_average(variant):
    sae = create_sae(sae_config(variant), seed=0)
    with torch.no_grad():
        sae.b_enc.fill_(1.0)  # every pre-activation positive, so exactly k survive
    x = torch.randn(32, 16)
    out = sae.training_step(x, StepContext())
    assert float(out.fire_counts.sum()) == 4 * 32


def test_topk_encode_has_exactly_k_active():
    sae = create_sae(sae_config("topk"), seed=0)
    with torch.no_grad():
        sae.b_enc.fill_(1.0)
    assert ((sae.encode(torch.randn(10, 16)) > 0).sum(-1) == 4).all()


def test_auxk_only_when_latents_are_dead():
    sae = create_sae(sae_config("topk"), seed=0)
    x = torch.randn(32, 16)
    assert "auxk" not in sae.training_step(x, StepContext(1.0, None)).terms
    dead = torch.ones(64, dtype=torch.bool)
    assert "auxk" in sae.training_step(x, StepContext(1.0, dead)).terms


def test_batchtopk_estimates_threshold_and_exports_jumprelu():
    sae = create_sae(sae_config("batchtopk"), seed=0)
    x = torch.randn(64, 16)
    sae.training_step(x, StepContext())
    theta = float(sae.threshold)
    assert theta > 0
    exported = sae.export_for_inference()
    assert exported.architecture == "jumprelu"
    assert torch.allclose(exported.threshold, torch.full((64,), theta))
    assert torch.allclose(exported(x), sae(x))


def test_gated_matches_definition():
    sae = create_sae(sae_config("gated"), seed=0)
    with torch.no_grad():
        sae.r_mag.uniform_(-1, 1)
        sae.b_gate.uniform_(-0.5, 0.5)
        sae.b_mag.uniform_(-0.5, 0.5)
    x = torch.randn(8, 16)
    xc = x - sae.b_dec
    gate = xc @ sae.W_enc + sae.b_gate
    mag = xc @ (sae.W_enc * sae.r_mag.exp()) + sae.b_mag
    assert torch.allclose(sae.encode(x), (gate > 0).float() * torch.relu(mag))


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"architecture": "topk", "d_in": 8, "d_sae": 16, "k": 32}, "k=32 exceeds d_sae=16"),
        (
            {"architecture": "jumprelu", "d_in": 8, "d_sae": 16, "sparsity_coefficient": -1},
            "sparsity_coefficient must be >= 0",
        ),
        (
            {"architecture": "relu", "d_in": 8, "d_sae": 16, "l1_coefficient": -0.1},
            "l1_coefficient",
        ),
        (
            {
                "architecture": "jumprelu",
                "d_in": 8,
                "d_sae": 16,
                "sparsity_penalty": "quadratic-frequency",
                "frequency_scale": 0,
            },
            "frequency_scale must be > 0",
        ),
        (
            {
                "architecture": "jumprelu",
                "d_in": 8,
                "d_sae": 16,
                "sparsity_penalty": "quadratic-frequency",
            },
            "--frequency-scale",
        ),
        ({"architecture": "relu", "d_in": 0, "d_sae": 16}, "d_in"),
    ],
)
def test_bad_configs_give_one_line_errors(cfg, message):
    with pytest.raises(ConfigError, match=message) as info:
        make_config(cfg)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("variant", VARIANTS)
def test_wrong_width_input_is_a_clear_error(variant):
    sae = create_sae(sae_config(variant), seed=0)
    with pytest.raises(DataError, match="d_in=16"):
        sae.check_input(torch.randn(3, 17))


@pytest.mark.parametrize("variant", ["relu", "jumprelu", "gated"])
def test_scale_latents_preserves_reconstruction(variant):
    sae = create_sae(sae_config(variant), seed=0)
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(64, 1) + 0.5)
    x = torch.randn(16, 16)
    before = sae(x)
    sae.normalize_decoder()
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(64), atol=1e-6)
    assert torch.allclose(sae(x), before, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_fold_input_scale_gives_same_function_in_raw_units(variant):
    sae = create_sae(sae_config(variant), seed=0)
    if variant == "batchtopk":
        sae.training_step(torch.randn(64, 16), StepContext())
    x_raw = torch.randn(16, 16) * 7.0
    scale = 7.0
    expected = sae(x_raw / scale) * scale
    sae.fold_input_scale(scale)
    assert torch.allclose(sae(x_raw), expected, atol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
def test_reinitialize_latents_touches_only_those_latents(variant):
    sae = create_sae(sae_config(variant), seed=0)
    before = {k: v.clone() for k, v in sae.state_dict().items()}
    idx = torch.tensor([1, 5, 9])
    sae.reinitialize_latents(idx, generator=torch.Generator().manual_seed(3))
    keep = torch.ones(64, dtype=torch.bool)
    keep[idx] = False
    assert torch.equal(sae.W_dec[keep], before["W_dec"][keep])
    assert torch.equal(sae.W_enc[:, keep], before["W_enc"][:, keep])
    assert not torch.equal(sae.W_dec[idx], before["W_dec"][idx])


def test_batchtopk_accepts_a_fractional_k():
    sae = create_sae(sae_config("batchtopk", k=1.5), seed=0)
    with torch.no_grad():
        sae.b_enc.fill_(1.0)
    out = sae.training_step(torch.randn(32, 16), StepContext())
    assert float(out.fire_counts.sum()) == 48


def test_topk_rejects_a_fractional_k():
    with pytest.raises(ConfigError, match="valid integer"):
        make_config(sae_config("topk", k=1.5))
