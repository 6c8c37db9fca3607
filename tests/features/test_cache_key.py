"""The feature cache key changes whenever the SAE's function can: its weights or its cfg.json."""

import json
from types import SimpleNamespace

import pytest
import torch

from saeprobe.features.cache import feature_key
from saeprobe.features.pooling import Pooling
from saeprobe.sae import create_sae
from saeprobe.sae.io import save_sae
from tests.conftest import sae_config

# feature_key hashes the model's weights and chat template; a stand-in module is enough here.
LM = SimpleNamespace(model=torch.nn.Linear(2, 2), tokenizer=SimpleNamespace(chat_template=None))
POOLS = [Pooling(method="max")]


def _key(sae_dir):
    return feature_key(LM, 3, 64, POOLS, ["a prompt"], {"s": sae_dir})


def _edit(cfg: dict, what: str) -> None:
    ours = cfg["saeprobe"]["config"]
    if what == "k":
        cfg["k"] = ours["k"] = 8
    elif what == "apply_b_dec_to_input":
        cfg[what] = ours[what] = False
    else:  # same tensors, read as a ReLU SAE
        cfg["architecture"], ours["architecture"] = "standard", "relu"
        del cfg["k"], ours["k"]


@pytest.mark.parametrize("what", ["k", "apply_b_dec_to_input", "architecture"])
def test_editing_cfg_json_changes_the_key(tmp_path, what):
    save_sae(create_sae(sae_config("topk"), seed=0), tmp_path / "s")
    before = _key(tmp_path / "s")
    path = tmp_path / "s" / "cfg.json"
    cfg = json.loads(path.read_text())
    _edit(cfg, what)
    path.write_text(json.dumps(cfg))
    assert _key(tmp_path / "s") != before


def test_an_identical_save_keeps_the_key(tmp_path):
    sae = create_sae(sae_config("topk"), seed=0)
    save_sae(sae, tmp_path / "a")
    save_sae(sae, tmp_path / "b")
    assert _key(tmp_path / "a") == _key(tmp_path / "b")
