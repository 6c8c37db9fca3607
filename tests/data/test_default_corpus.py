"""The offline default corpus: real prose from CPython's own documentation."""

from saeprobe.data.default_corpus import NAME, _prose, iter_default_corpus
from saeprobe.data.text import iter_texts


def test_default_corpus_is_large_deterministic_prose():
    docs = list(iter_default_corpus())
    assert len(docs) > 50 and sum(map(len, docs)) > 200_000
    assert docs == list(iter_texts(NAME))
    words = " ".join(docs[:20]).split()
    assert sum(w.lower() in {"the", "a", "is", "of", "to"} for w in words) / len(words) > 0.1


def test_prose_filter_drops_code_grammar_and_underlines():
    text = "Title\n*****\n\nA sentence that\nwraps.\n\n   if_stmt ::= 'if' expr\n\n>>> 1 + 1\n2"
    assert _prose(text) == "Title\n\nA sentence that wraps."
