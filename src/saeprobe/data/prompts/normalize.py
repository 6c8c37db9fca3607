"""Remove surface formatting cues that tell prompt sources apart.

Why: a probe trained to separate harmful from harmless prompts will happily learn *anything* that
separates the two training sources. In the shared data 11.5 % of the Alpaca instructions (the
harmless source) end in "?" and 68 % end in ".", against 0 % (for both) of the HarmBench and
AdvBench requests, which end on their last word. So "ends with punctuation" alone is a decent
harmlessness detector, and it fails as soon as a harmful prompt is written as a full sentence or
a question. SAE inspection in the original study found cues of this kind (e.g.
"ending in brackets"). We cannot remove every stylistic difference, but we remove the cheap,
mechanical ones, identically for every source:

1. Typographic quotes and apostrophes become ASCII (' and "), so the character set of one
   source's editor is no cue.
2. Leading/trailing whitespace is stripped and every internal run of whitespace (newlines and
   tabs included) becomes one space, so line structure is no cue.
3. Quotes or brackets that wrap the *whole* prompt are removed ("...", '...', (...), [...],
   {...}), repeatedly; brackets that merely open and close the text, as in "(a) x and (b) y",
   are kept.
4. Trailing sentence punctuation (. ? ! ; : , and "...") is removed, so every prompt ends the
   same way: on its last word. Removing is simpler and safer than appending a full stop,
   because a question with a full stop reads worse than a question with nothing.
5. The first letter is capitalised (the rest of the casing is left alone: acronyms matter).

Normalisation applies to base prompts, before any transformation, so wrappers and rewrites keep
their own formatting (the all_caps rewrite still asks for capitals; templates are untouched).
"""

from __future__ import annotations

import re

_TYPOGRAPHIC = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_WHITESPACE = re.compile(r"\s+")
_TRAILING_PUNCT = re.compile(r"(?:[.?!;:,\u2026]|\s)+$")
_PAIRS = {"(": ")", "[": "]", "{": "}", '"': '"', "'": "'"}


def collapse_whitespace(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _wraps_whole(text: str) -> bool:
    """True when the first character's partner closes the text at its very end, not earlier."""
    if len(text) < 2 or text[0] not in _PAIRS or text[-1] != _PAIRS[text[0]]:
        return False
    opener, closer = text[0], text[-1]
    inner = text[1:-1]
    if opener == closer:  # a quote: wrapping only if it does not also occur inside
        return opener not in inner
    depth = 0
    for ch in inner:
        if ch == opener:
            depth += 1
        elif ch == closer:
            depth -= 1
            if depth < 0:  # the first opener closed before the end: "(a) x (b)"
                return False
    return depth == 0


def strip_wrapping(text: str) -> str:
    while _wraps_whole(text):
        text = text[1:-1].strip()
    return text


def strip_trailing_punctuation(text: str) -> str:
    return _TRAILING_PUNCT.sub("", text)


def capitalise_first(text: str) -> str:
    return text[:1].upper() + text[1:] if text[:1].islower() else text


def normalize_prompt(text: str) -> str:
    """Apply steps 1-5 of the module docstring; may return "" (the caller rejects empties)."""
    text = collapse_whitespace(text.translate(_TYPOGRAPHIC))
    previous = None
    while text != previous:  # '"Why?"' needs unwrap, strip "?", and possibly unwrap again
        previous = text
        text = strip_trailing_punctuation(strip_wrapping(text))
    return capitalise_first(text)
