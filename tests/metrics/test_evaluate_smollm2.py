"""The offline default chat model end to end: harvest, train, evaluate with ΔLM loss and KL, the
identity and zero-ablation known answers, chat data, and one-line errors. Real SmolLM2 weights;
small enough for CI (the model is cut after an early layer for the harvest)."""

import json

import numpy as np
import pytest
import torch
from harvest_helpers import cli
from known_saes import identity_sae, mean_only_sae

from saeprobe.activations.harvest import HarvestConfig, harvest
from saeprobe.activations.store import ActivationStore
from saeprobe.metrics.evaluate import EvaluateConfig, evaluate_sae
from saeprobe.sae.io import save_sae

LAYER = 4
CHATS = [
    [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
    ],
    [
        {"role": "user", "content": "Name a primary colour."},
        {"role": "assistant", "content": "Red is a primary colour."},
    ],
]


@pytest.fixture(scope="module")
def smol_store(smollm2, tmp_path_factory):
    out = tmp_path_factory.mktemp("smol") / "acts"
    cfg = HarvestConfig(
        model="smollm2",
        layers=[LAYER],
        out=out,
        max_tokens=3000,
        context=64,
        batch_size=16,
        shard_tokens=1024,
        progress=False,
    )
    harvest(cfg, lm=smollm2)
    return out


def _evaluate(sae, store, tmp_path, name):
    save_sae(sae, tmp_path / name)
    cfg = EvaluateConfig(sae=tmp_path / name, acts=store, eval_tokens=1000, lm_windows=6)
    return evaluate_sae(cfg)


def test_identity_sae_known_answers(smol_store, tmp_path):
    report = _evaluate(identity_sae(576), smol_store, tmp_path, "identity")
    assert report["fvu"] == pytest.approx(0, abs=1e-10)
    assert report["delta_lm_loss"] == pytest.approx(0, abs=1e-5)
    assert report["kl_divergence"] == pytest.approx(0, abs=1e-6)
    assert report["ce_loss_recovered"] == pytest.approx(1.0, abs=1e-5)
    assert 1.0 < report["ce_clean"] < 5.0  # a trained model on English prose
    assert report["lm_texts_held_out"] and report["lm_n_spliced_positions"] > 0


def test_zero_ablation_recovers_nothing(smol_store, tmp_path):
    report = _evaluate(mean_only_sae(torch.zeros(576)), smol_store, tmp_path, "zero")
    assert report["ce_loss_recovered"] == pytest.approx(0.0, abs=1e-6)
    assert report["delta_lm_loss"] > 1.0  # deleting the residual stream ruins the model


def test_harvest_train_evaluate_through_the_cli(smol_store, tmp_path):
    m = ActivationStore(smol_store).manifest
    assert (m.model, m.d_model, m.is_causal_lm, m.data_format) == ("smollm2", 576, True, "plain")
    assert m.outlier_factor == 10.0 and m.chat_template is None
    sae_dir = tmp_path / "topk"
    r = cli("train", "--acts", str(smol_store), "--arch", "topk", "--k", "16", "--d-sae", "1152",
            "--batch-size", "256", "--out", str(sae_dir), "--no-progress")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = tmp_path / "eval.json"
    r = cli("evaluate", "--sae", str(sae_dir), "--acts", str(smol_store), "--json", str(out),
            "--eval-tokens", "1000", "--lm-windows", "6")  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    for key in ("delta_lm_loss", "kl_divergence", "ce_loss_recovered"):
        assert np.isfinite(report[key]), key
    assert report["delta_lm_loss"] > 0 and report["kl_divergence"] > 0
    assert report["ce_loss_recovered"] < 1.0


def test_layer_out_of_range_for_smollm2(tmp_path):
    r = cli("harvest", "--model", "smollm2", "--layer", "30", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "layer 30 is out of range for smollm2 (30 layers); choose 0..29" in r.stderr
    assert not (tmp_path / "o").exists()


def _chat_file(path, chats):
    path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in chats), encoding="utf-8")
    return path


def test_chat_file_stores_user_and_assistant_text_only(smollm2, tmp_path):
    data = _chat_file(tmp_path / "chat.jsonl", CHATS)
    cfg = HarvestConfig(model="smollm2", layers=[LAYER], data=str(data), out=tmp_path / "c",
                        context=128, progress=False)  # fmt: skip
    manifest = harvest(cfg, lm=smollm2)
    assert manifest.data_format == "messages" and manifest.chat_template == "model"
    store = ActivationStore(tmp_path / "c")
    tokens = store.tokens(np.arange(store.n_tokens))
    tok = smollm2.tokenizer
    for doc_id, chat in enumerate(CHATS):
        stored = tokens["token_id"][tokens["doc_id"] == doc_id].tolist()
        expected = [t for m in chat for t in tok(m["content"], add_special_tokens=False).input_ids]
        assert stored == expected  # no system prompt, no <|im_start|>user, no <|im_end|>


def test_text_with_chat_is_a_user_turn_and_the_manifest_says_so(smollm2, tmp_path):
    data = tmp_path / "t.txt"
    data.write_text("How do I bake bread at home?\nWhat is a prime number?\n")
    cfg = HarvestConfig(model="smollm2", layers=[LAYER], data=str(data), out=tmp_path / "u",
                        chat=True, progress=False)  # fmt: skip
    manifest = harvest(cfg, lm=smollm2)
    assert manifest.data_format == "user_turn" and manifest.chat_template == "model"
    stored = ActivationStore(tmp_path / "u").tokens(np.arange(manifest.n_tokens))["token_id"]
    first = smollm2.tokenizer("How do I bake bread at home?", add_special_tokens=False).input_ids
    assert stored[: len(first)].tolist() == first


def test_malformed_chat_row_is_a_one_line_error(tmp_path):
    data = _chat_file(tmp_path / "chat.jsonl", CHATS)
    with open(data, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"messages": [{"role": "robot", "content": "beep"}]}) + "\n")
    r = cli("harvest", "--model", "smollm2", "--layer", "1", "--data", str(data),
            "--out", str(tmp_path / "o"), "--no-progress")  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "chat.jsonl:3" in r.stderr and "role 'robot'" in r.stderr
