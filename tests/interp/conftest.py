"""Tiny interp fixtures: a store of a random-weight Llama, small SAEs, their records."""

import json

import pytest
import torch

from saeprobe.activations.harvest import HarvestConfig, harvest
from saeprobe.activations.store import ActivationStore
from saeprobe.data.default_corpus import iter_default_corpus
from saeprobe.interp.collect import LatentsConfig, collect_latents
from saeprobe.sae.io import save_sae
from saeprobe.sae.registry import create_sae

N_DEAD = 6


@pytest.fixture(scope="session")
def tiny_store(tiny_llama, tmp_path_factory):
    """About 2,000 tokens of real prose at layer 1 of the random tiny Llama, windows of 32."""
    root = tmp_path_factory.mktemp("interp_store")
    docs = [d[:1200] for _, d in zip(range(20), iter_default_corpus(), strict=False)]
    corpus = root / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    cfg = HarvestConfig(
        model=tiny_llama.name,
        layers=[1],
        data=str(corpus),
        out=root / "store",
        context=32,
        batch_size=8,
        shard_tokens=700,
        max_tokens=2000,
        progress=False,
        autocast=False,
    )
    harvest(cfg, lm=tiny_llama)
    return root / "store"


def make_sae(path, store, d_sae=48, dead=N_DEAD, fire=0.04, seed=0):
    """A random ReLU SAE on the tiny Llama's width (32) whose latents fire on about `fire` of
    the store's tokens (bias at minus that quantile of the pre-activation); the first `dead`
    latents can never fire."""
    sae = create_sae({"architecture": "relu", "d_in": 32, "d_sae": d_sae}, seed=seed)
    x = ActivationStore(store).activations(slice(0, 1000), 1)
    with torch.no_grad():
        pre = sae.pre_activation(x.float())
        sae.b_enc -= torch.quantile(pre, 1 - fire, dim=0)
        sae.b_enc[:dead] = -1e4
    save_sae(sae, path, metadata={"hook_layer": 1})
    return path


@pytest.fixture(scope="session")
def tiny_sae(tiny_store, tmp_path_factory):
    return make_sae(tmp_path_factory.mktemp("interp_sae") / "relu", tiny_store)


@pytest.fixture(scope="session")
def tiny_records(tiny_sae, tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("interp_records") / "latents"
    collect_latents(
        LatentsConfig(sae=tiny_sae, acts=tiny_store, out=out, n_top=6, n_random=6, progress=False),
        log=lambda _: None,
    )
    return out
