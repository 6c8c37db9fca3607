import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from saeprobe.errors import FormatError
from saeprobe.sae import StepContext, create_sae
from saeprobe.sae.io import load_sae, save_sae
from tests.conftest import ARCH_KW, sae_config


@pytest.mark.parametrize("variant", list(ARCH_KW))
def test_round_trip_is_exact(tmp_path, variant):
    sae = create_sae(sae_config(variant), seed=1)
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(torch.rand_like(p) * 0.1)  # make every parameter non-trivial
    if variant == "batchtopk":
        sae.training_step(torch.randn(64, 16), StepContext())
    save_sae(sae, tmp_path / "sae", metadata={"hook": "layer.3"})
    loaded = load_sae(tmp_path / "sae")
    expected = sae.export_for_inference()
    assert type(loaded) is type(expected)
    assert loaded.cfg == expected.cfg
    for name, t in expected.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], t), name
    x = torch.randn(20, 16)
    assert torch.equal(loaded(x), expected(x))


def test_cfg_json_follows_saelens_layout(tmp_path):
    save_sae(create_sae(sae_config("topk"), seed=0), tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    assert cfg["architecture"] == "topk" and cfg["k"] == 4
    assert (cfg["d_in"], cfg["d_sae"]) == (16, 64)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "s" / "sae_weights.safetensors"), "pt") as fh:
        shapes = {k: tuple(fh.get_tensor(k).shape) for k in fh.keys()}
    assert shapes == {"W_enc": (16, 64), "W_dec": (64, 16), "b_enc": (64,), "b_dec": (16,)}


def test_relu_saves_as_saelens_standard(tmp_path):
    save_sae(create_sae(sae_config("relu"), seed=0), tmp_path / "s")
    assert json.loads((tmp_path / "s" / "cfg.json").read_text())["architecture"] == "standard"


def test_loads_a_plain_saelens_directory(tmp_path):
    d_in, d_sae = 6, 10
    w = {
        "W_enc": torch.randn(d_in, d_sae),
        "W_dec": torch.randn(d_sae, d_in),
        "b_enc": torch.randn(d_sae),
        "b_dec": torch.randn(d_in),
    }
    (tmp_path / "cfg.json").write_text(
        json.dumps(
            {
                "architecture": "topk",
                "d_in": d_in,
                "d_sae": d_sae,
                "activation_fn_kwargs": {"k": 3},
                "apply_b_dec_to_input": True,
                "normalize_activations": "none",
            }
        )
    )
    save_file(w, str(tmp_path / "sae_weights.safetensors"))
    sae = load_sae(tmp_path)
    assert sae.architecture == "topk" and sae.cfg.k == 3
    x = torch.randn(4, d_in)
    z = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    vals, idx = z.topk(3, dim=-1)
    f = torch.zeros_like(z).scatter(-1, idx, torch.relu(vals))
    assert torch.allclose(sae(x), f @ w["W_dec"] + w["b_dec"], atol=1e-6)


def _gemma_params(d_in=6, d_sae=10):
    g = torch.Generator().manual_seed(0)
    return {
        "W_enc": torch.randn(d_in, d_sae, generator=g),
        "W_dec": torch.randn(d_sae, d_in, generator=g),
        "b_enc": torch.randn(d_sae, generator=g),
        "b_dec": torch.randn(d_in, generator=g),
        "threshold": torch.rand(d_sae, generator=g),
    }


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_loads_gemma_scope_params(tmp_path, fmt):
    p = _gemma_params()
    if fmt == "npz":
        np.savez(tmp_path / "params.npz", **{k: v.numpy() for k, v in p.items()})
    else:
        save_file(p, str(tmp_path / "params.safetensors"))
    sae = load_sae(tmp_path)
    assert sae.architecture == "jumprelu" and not sae.cfg.apply_b_dec_to_input
    x = torch.randn(5, 6)
    z = x @ p["W_enc"] + p["b_enc"]  # Gemma Scope: no pre-encoder bias
    f = z * (z > p["threshold"])
    assert torch.allclose(sae(x), f @ p["W_dec"] + p["b_dec"], atol=1e-5)


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FormatError, match="does not exist"):
        load_sae(tmp_path / "nope")


def test_missing_weights_file(tmp_path):
    save_sae(create_sae(sae_config("relu"), seed=0), tmp_path / "s")
    (tmp_path / "s" / "sae_weights.safetensors").unlink()
    with pytest.raises(FormatError, match="is missing"):
        load_sae(tmp_path / "s")


def test_truncated_weights_file(tmp_path):
    save_sae(create_sae(sae_config("relu"), seed=0), tmp_path / "s")
    f = tmp_path / "s" / "sae_weights.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(FormatError, match="corrupt or truncated"):
        load_sae(tmp_path / "s")


def test_corrupt_cfg(tmp_path):
    save_sae(create_sae(sae_config("relu"), seed=0), tmp_path / "s")
    (tmp_path / "s" / "cfg.json").write_text("{not json")
    with pytest.raises(FormatError, match="not JSON"):
        load_sae(tmp_path / "s")


def test_shape_mismatch_between_cfg_and_weights(tmp_path):
    save_sae(create_sae(sae_config("relu"), seed=0), tmp_path / "s")
    cfg_path = tmp_path / "s" / "cfg.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["saeprobe"]["config"]["d_sae"] = 65
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(FormatError, match="do not match"):
        load_sae(tmp_path / "s")


def test_bad_gemma_scope_archive(tmp_path):
    (tmp_path / "params.npz").write_bytes(b"garbage")
    with pytest.raises(FormatError, match="corrupt"):
        load_sae(tmp_path)


def test_overwrite_is_atomic_and_complete(tmp_path):
    a = create_sae(sae_config("relu"), seed=0)
    b = create_sae(sae_config("relu"), seed=1)
    save_sae(a, tmp_path / "s")
    save_sae(b, tmp_path / "s")
    assert torch.equal(load_sae(tmp_path / "s").W_dec, b.W_dec)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temp dirs left behind


def test_saved_files_follow_the_umask_not_private_temp_modes(tmp_path):
    import os
    import stat

    from saeprobe.io_utils import DIR_MODE, FILE_MODE
    from saeprobe.train.checkpoint import Checkpoint, checkpoint_path, save_checkpoint

    save_sae(create_sae({"architecture": "relu", "d_in": 4, "d_sae": 8}), tmp_path / "s")
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(tmp_path / "s") == DIR_MODE
    assert mode(tmp_path / "s" / "sae_weights.safetensors") == FILE_MODE
    save_checkpoint(tmp_path / "ckpt", Checkpoint(step=1, meta={}, runs=[]))
    assert mode(checkpoint_path(tmp_path / "ckpt")) == FILE_MODE
