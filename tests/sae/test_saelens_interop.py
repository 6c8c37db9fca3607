"""Round trips through the real SAELens package, in both directions, for every architecture both
sides have: our SAEs loaded with `sae_lens.SAE.load_from_disk`, and SAEs saved by SAELens
(`save_model`, `save_inference_model`) loaded with `load_sae`, compared on the same activations.

Weights are random everywhere (biases, thresholds, gates, decoder rows far from unit norm), so a
field that is read wrongly changes the numbers."""

import json
import warnings

import pytest
import torch

sae_lens = pytest.importorskip(
    "sae_lens",
    reason="sae-lens is not installed; `echo torch==2.13.0 > c.txt && pip install -c c.txt "
    "sae-lens` runs the SAELens round trips (.ci/run does)",
)
from sae_lens import (  # noqa: E402
    SAE,
    BatchTopKTrainingSAE,
    BatchTopKTrainingSAEConfig,
    GatedSAE,
    GatedSAEConfig,
    JumpReLUSAE,
    JumpReLUSAEConfig,
    StandardSAE,
    StandardSAEConfig,
    TopKSAE,
    TopKSAEConfig,
)
from sae_lens.training.activation_scaler import ActivationScaler  # noqa: E402

from saeprobe.sae import StepContext, create_sae  # noqa: E402
from saeprobe.sae.io import load_sae, save_sae  # noqa: E402
from tests.conftest import ARCH_KW, sae_config  # noqa: E402

D_IN, D_SAE = 16, 64
TOL = {"rtol": 1e-5, "atol": 1e-5}
SAELENS_CLASS = {
    "relu": "StandardSAE",
    "gated": "GatedSAE",
    "jumprelu": "JumpReLUSAE",
    "jumprelu_qf": "JumpReLUSAE",
    "topk": "TopKSAE",
    "batchtopk": "JumpReLUSAE",  # saved as a JumpReLU, as SAELens saves its own BatchTopK
}


def _x(n=64, seed=1):
    return torch.randn(n, D_IN, generator=torch.Generator().manual_seed(seed)) * 2


def _saelens_load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices unrelated to the format
        return SAE.load_from_disk(str(path))


def _randomise(module, seed=0):
    """Random values in every parameter; thresholds positive; decoder rows of norm 0.3 to 3."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim == 0:
                continue
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        module.W_dec.mul_(torch.empty(module.W_dec.shape[0], 1).uniform_(1, 10, generator=g))
        if getattr(module, "threshold", None) is not None and module.threshold.ndim == 1:
            module.threshold.copy_(torch.rand(module.threshold.shape, generator=g) * 0.5)


def _compare(ours, theirs, x):
    """encode, decode of the same latents, and the full forward agree."""
    f = theirs.encode(x)
    torch.testing.assert_close(ours.encode(x), f, **TOL)
    torch.testing.assert_close(ours.decode(f), theirs.decode(f), **TOL)
    torch.testing.assert_close(ours(x), theirs(x), **TOL)
    assert (f > 0).any() and not (f > 0).all()  # the comparison exercised the sparsity rule


# ----- ours -> SAELens ----------------------------------------------------------------------
@pytest.mark.parametrize("b_dec_in", [True, False], ids=["pre-bias", "no-pre-bias"])
@pytest.mark.parametrize("variant", list(ARCH_KW))
def test_our_saes_load_in_saelens_and_agree(tmp_path, variant, b_dec_in):
    sae = create_sae(sae_config(variant, apply_b_dec_to_input=b_dec_in), seed=3)
    _randomise(sae)
    if variant == "batchtopk":
        sae.training_step(_x(256, seed=9), StepContext())  # estimates the inference threshold
    save_sae(sae, tmp_path / "sae")
    theirs = _saelens_load(tmp_path / "sae")
    assert type(theirs).__name__ == SAELENS_CLASS[variant]
    assert theirs.cfg.apply_b_dec_to_input is b_dec_in
    if variant == "topk":
        assert theirs.cfg.k == 4 and theirs.cfg.rescale_acts_by_decoder_norm is False
    _compare(sae.export_for_inference(), theirs, _x())


# ----- SAELens -> ours ----------------------------------------------------------------------
def _saelens_sae(kind, b_dec_in):
    common = {"d_in": D_IN, "d_sae": D_SAE, "apply_b_dec_to_input": b_dec_in}
    return {
        "standard": lambda: StandardSAE(StandardSAEConfig(**common)),
        "gated": lambda: GatedSAE(GatedSAEConfig(**common)),
        "jumprelu": lambda: JumpReLUSAE(JumpReLUSAEConfig(**common)),
        "topk": lambda: TopKSAE(TopKSAEConfig(**common, k=6)),
        "topk-rescaled": lambda: TopKSAE(
            TopKSAEConfig(**common, k=6, rescale_acts_by_decoder_norm=True)
        ),
    }[kind]()


OURS = {"standard": "relu", "gated": "gated", "jumprelu": "jumprelu"}


@pytest.mark.parametrize("b_dec_in", [True, False], ids=["pre-bias", "no-pre-bias"])
@pytest.mark.parametrize("kind", ["standard", "gated", "jumprelu", "topk", "topk-rescaled"])
def test_saelens_saes_load_in_ours_and_agree_both_ways(tmp_path, kind, b_dec_in):
    theirs = _saelens_sae(kind, b_dec_in)
    _randomise(theirs)
    if kind == "jumprelu":
        with torch.no_grad():
            theirs.threshold[:8] = -0.2  # SAELens gates ReLU(z), so these act as 0
    theirs.save_model(str(tmp_path / "theirs"))
    ours = load_sae(tmp_path / "theirs")
    assert ours.architecture == OURS.get(kind, "topk")
    assert ours.cfg.apply_b_dec_to_input is b_dec_in
    x = _x()
    _compare(ours, theirs, x)
    # And back: what we save from it is the same function in SAELens.
    save_sae(ours, tmp_path / "ours")
    _compare(ours, _saelens_load(tmp_path / "ours"), x)


def test_a_saelens_batchtopk_loads_as_its_jumprelu_export_and_as_batchtopk(tmp_path):
    cfg = BatchTopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=4.0)  # rescales by decoder norm
    theirs = BatchTopKTrainingSAE(cfg)
    _randomise(theirs)
    theirs.topk_threshold = torch.tensor(0.4, dtype=torch.float64)
    theirs.save_inference_model(str(tmp_path / "export"))  # SAELens's finished BatchTopK
    theirs.save_model(str(tmp_path / "checkpoint"))  # a training checkpoint
    export = _saelens_load(tmp_path / "export")
    assert json.loads((tmp_path / "export" / "cfg.json").read_text())["architecture"] == "jumprelu"
    x = _x()
    ours = load_sae(tmp_path / "export")
    assert ours.architecture == "jumprelu"
    _compare(ours, export, x)
    checkpoint = load_sae(tmp_path / "checkpoint")
    assert checkpoint.architecture == "batchtopk" and checkpoint.cfg.k == 4.0
    _compare(checkpoint, export, x)


def test_a_saelens_checkpoint_with_a_norm_scaling_factor(tmp_path):
    """`expected_average_only_in`: SAELens's weights read x * s (s in activation_scaler.json)."""
    s = 0.37
    theirs = StandardSAE(
        StandardSAEConfig(d_in=D_IN, d_sae=D_SAE, normalize_activations="expected_average_only_in")
    )
    _randomise(theirs)
    theirs.save_model(str(tmp_path / "ckpt"))
    ActivationScaler(scaling_factor=s).save(str(tmp_path / "ckpt" / "activation_scaler.json"))
    ours = load_sae(tmp_path / "ckpt")
    x = _x()
    scaler = ActivationScaler(scaling_factor=s)
    torch.testing.assert_close(ours.encode(x), theirs.encode(scaler.scale(x)), **TOL)
    f = ours.encode(x)
    torch.testing.assert_close(ours.decode(f), scaler.unscale(theirs.decode(f)), **TOL)
    # SAELens's own fold gives the SAE we loaded.
    theirs.fold_activation_norm_scaling_factor(s)
    _compare(ours, theirs, x)


def test_the_older_topk_layout_loads_as_topk_in_both(tmp_path):
    """SAELens < 6 wrote TopK as `standard` + activation_fn_str `topk`; it once loaded here as a
    ReLU (L0 16 of 32 instead of 4)."""
    theirs = TopKSAE(TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=4))
    _randomise(theirs)
    theirs.save_model(str(tmp_path / "s"))
    path = tmp_path / "s" / "cfg.json"
    cfg = json.loads(path.read_text())
    for key in ("k", "rescale_acts_by_decoder_norm", "metadata"):
        cfg.pop(key)  # no sae_lens_version: SAELens reads it as the older layout
    cfg |= {
        "architecture": "standard",
        "activation_fn_str": "topk",
        "activation_fn_kwargs": {"k": 4},
    }
    path.write_text(json.dumps(cfg))
    reloaded = _saelens_load(tmp_path / "s")
    assert type(reloaded).__name__ == "TopKSAE" and reloaded.cfg.k == 4
    ours = load_sae(tmp_path / "s")
    assert ours.architecture == "topk" and ours.cfg.k == 4
    x = _x()
    _compare(ours, reloaded, x)
    assert ((ours.encode(x) > 0).sum(-1) <= 4).all()
