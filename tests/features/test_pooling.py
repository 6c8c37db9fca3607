"""Fixed-position pooling on SmolLM2: anchors name the right token, and positions are per prompt.

SmolLM2's template as served ends the user turn with `<|im_end|>\\n<|im_start|>assistant\\n`,
where "assistant" is two tokens, so the closing `<|im_end|>` is 6 tokens before the response.
"""

import numpy as np
import pytest
import torch

from saeprobe.errors import ConfigError, DataError
from saeprobe.features.extract import extract_features
from saeprobe.features.pooling import Pooling
from saeprobe.lm.hooks import capture_layers
from saeprobe.sae.config import build_config

pytest.importorskip("transformers")

LAYER = 6
SMOL_PREFIX = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n<|im_start|>user\n"
)
SMOL_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"
LONG = [
    "Describe a quiet morning by the sea, with gulls, fishing boats and the smell of salt.",
    "How do I bake a loaf of sourdough bread at home without a proper oven thermometer?",
]
EOT = Pooling(method="position", anchor="end_of_user_turn", offset=0)


def _position(anchor: str, offset: int) -> Pooling:
    return Pooling(method="position", anchor=anchor, offset=offset)


def test_names_are_stable_and_distinct_per_anchor():
    assert Pooling(method="position", offset=1).name == "position+1"  # as before anchors
    assert _position("last_user_token", -1).name == "position-1"
    assert _position("end_of_user_turn", 0).name == "eot+0"
    assert _position("response_start", -5).name == "resp-5"
    assert Pooling().name == "max" and Pooling(method="last").name == "last"


def test_anchor_config_is_validated_in_one_line():
    pool = build_config(Pooling, {"method": "position", "anchor": "end_of_user_turn", "offset": 0})
    assert pool == EOT
    with pytest.raises(ConfigError, match="needs a negative offset") as err:
        build_config(Pooling, {"method": "position", "anchor": "response_start", "offset": 0})
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="applies only to method 'position'"):
        build_config(Pooling, {"method": "max", "anchor": "end_of_user_turn"})


def _manual_hidden(lm, text: str) -> tuple[torch.Tensor, list[str]]:
    """The layer's residual of `text` as SmolLM2's chat turn, formatted here by hand."""
    ids = lm.tokenizer(SMOL_PREFIX + text + SMOL_SUFFIX, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        h = capture_layers(lm.model, lm.blocks, [LAYER], input_ids=torch.tensor([ids]))[LAYER]
    return h[0].float(), lm.tokenizer.convert_ids_to_tokens(ids)


def test_end_of_user_turn_reads_im_end_and_matches_the_study_indexing(smollm2):
    texts = ["user", *LONG]
    pools = [EOT, _position("response_start", -6), _position("response_start", -5)]
    feats = extract_features(smollm2, LAYER, texts, {}, pools, batch_size=3, progress=False)
    for i, text in enumerate(texts):
        h, tokens = _manual_hidden(smollm2, text)
        # Special tokens split the text, so the prefix and prompt alone end just before it.
        closing = len(smollm2.tokenizer(SMOL_PREFIX + text, add_special_tokens=False)["input_ids"])
        assert tokens[closing] == "<|im_end|>" and closing == len(tokens) - 6
        np.testing.assert_allclose(feats.dense["eot+0"][i], h[closing].numpy(), atol=1e-4)
        np.testing.assert_array_equal(feats.dense["resp-6"][i], feats.dense["eot+0"][i])
        # In Gemma -5 is <end_of_turn>; in SmolLM2 it is the "\n" after <|im_end|>.
        assert tokens[-5] == "Ċ"
        np.testing.assert_allclose(feats.dense["resp-5"][i], h[closing + 1].numpy(), atol=1e-4)


def test_a_valid_position_does_not_depend_on_the_batch(smollm2):
    pools = [EOT, _position("end_of_user_turn", -3), _position("response_start", -1), Pooling()]
    alone = extract_features(smollm2, LAYER, ["Hi"], {}, pools, progress=False)
    mixed = extract_features(smollm2, LAYER, [*LONG, "Hi"], {}, pools, batch_size=3, progress=False)
    for pool in pools:
        np.testing.assert_allclose(mixed.dense[pool.name][2], alone.dense[pool.name][0], atol=1e-4)


def _forward_counter(lm):
    calls = []
    handle = lm.model.register_forward_pre_hook(lambda *_: calls.append(1))
    return calls, handle


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        # Past the end: the template's 6 closing tokens follow every prompt's text alike.
        (Pooling(method="position", offset=7), r"position\+7: prompt 0 .* -\d+\.\.\+6 .*not \+7"),
        (_position("end_of_user_turn", 6), r"eot\+6: prompt 0 .* -\d+\.\.\+5 .*not \+6"),
        # Before the start: fine for the long prompts, not for "Hi" (31 tokens, 24 before it).
        (_position("last_user_token", -25), r"position-25: prompt 2 has 31 tokens.* -24\.\.\+6 "),
        (_position("end_of_user_turn", -26), r"eot-26: prompt 2 .* -25\.\.\+5 .*not -26"),
        (_position("response_start", -32), r"resp-32: prompt 2 .* -31\.\.-1 .*not -32"),
    ],
)
def test_a_position_outside_a_prompt_fails_before_any_forward(smollm2, pool, message):
    calls, handle = _forward_counter(smollm2)
    try:
        with pytest.raises(DataError, match=message) as err:
            # Batches of 2: the short prompt is alone in the second batch, so a check per batch
            # would already have run the model on the first.
            extract_features(smollm2, LAYER, [*LONG, "Hi"], {}, [pool], batch_size=2)
    finally:
        handle.remove()
    assert not calls and "\n" not in str(err.value)
