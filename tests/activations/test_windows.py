"""Context windows: special and template tokens are never harvested; text tokens all are."""

import pytest
import torch

from saeprobe.activations.windows import collate, iter_windows, plain_windows, special_frame
from saeprobe.errors import DataError

TEXT = "The rabbit-hole went straight on like a tunnel for some way, and then dipped suddenly down."


def test_windows_split_a_document_and_keep_exactly_its_text_tokens(minilm):
    tok = minilm.tokenizer
    windows = list(plain_windows(tok, 7, TEXT * 3, context=16))
    ids = tok(TEXT * 3, add_special_tokens=False)["input_ids"]
    kept = [t for w in windows for t, k in zip(w.input_ids, w.keep, strict=True) if k]
    assert kept == ids
    assert all(len(w.input_ids) <= 16 for w in windows) and len(windows) > 2
    for w in windows:  # [CLS] ... [SEP] framing, never kept
        assert w.input_ids[0] == tok.cls_token_id and w.input_ids[-1] == tok.sep_token_id
        assert not w.keep[0] and not w.keep[-1] and w.doc_id == 7


def test_special_frame_of_bert_is_cls_and_sep(minilm):
    tok = minilm.tokenizer
    assert special_frame(tok) == ([tok.cls_token_id], [tok.sep_token_id])


def test_chat_windows_keep_only_the_user_text(minilm):
    tok = minilm.tokenizer
    (window,) = iter_windows([(0, TEXT)], tok, context=64, chat=True)
    kept = [t for t, k in zip(window.input_ids, window.keep, strict=True) if k]
    assert kept == tok(TEXT, add_special_tokens=False)["input_ids"]
    assert len(window.input_ids) > len(kept) + 2  # "user :" ... "assistant :" are excluded


def test_collate_pads_right_and_masks_padding(minilm):
    windows = list(iter_windows([(0, TEXT), (1, "Short.")], minilm.tokenizer, context=64))
    enc = collate(windows, pad=0)
    assert enc["input_ids"].shape == enc["keep"].shape == (2, len(windows[0].input_ids))
    n_short = len(windows[1].input_ids)
    assert enc["attention_mask"][1, n_short:].sum() == 0
    assert not enc["keep"][1, n_short:].any()
    assert torch.equal(enc["positions"][1], torch.arange(enc["input_ids"].shape[1]))


def test_too_small_context_is_a_clear_error(minilm):
    with pytest.raises(DataError, match="use at least 3"):
        list(iter_windows([(0, TEXT)], minilm.tokenizer, context=2))
