import pytest

from saeprobe.data.prompts.normalize import normalize_prompt


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("What are the three primary colors?", "What are the three primary colors"),
        ("Give three tips for staying healthy.", "Give three tips for staying healthy"),
        ("  describe   an\n atom!!  ", "Describe an atom"),
        ('"Write a poem about rain."', "Write a poem about rain"),
        ("(list five fruits)", "List five fruits"),
        ("[\u201cName a river?\u201d]", "Name a river"),
        ("(a) cats and (b) dogs", "(a) cats and (b) dogs"),
        ('"Yes" or "no"', '"Yes" or "no"'),
        ("Use the word \u2018hello\u2019 twice...", "Use the word 'hello' twice"),
        ("explain SQL joins", "Explain SQL joins"),
        ("?!", ""),
    ],
)
def test_normalize(raw, expected):
    assert normalize_prompt(raw) == expected


def test_trailing_question_mark_cue_is_gone():
    prompts = ["Why is the sky blue?", "How do tides work ?", "Is this a question?\n"]
    assert not any(normalize_prompt(p).endswith(("?", ".", " ")) for p in prompts)
