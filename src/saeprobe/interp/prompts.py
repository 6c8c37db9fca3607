"""Prompt text for the LLM explainer and scorers, and lenient parsing of what comes back.

Excerpts are written as plain text with the tokens of interest wrapped in `<<` `>>` (adjacent
marked tokens share one pair). Newlines inside an excerpt are written as `\\n` so that one
excerpt is one line. Which tokens are marked in an activating example: those whose activation
is at least `MARK_FRACTION` of the example's own peak (the peak is always marked).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from saeprobe.interp.records import Example

MARK_FRACTION = 0.3
DIGITS = tuple("0123456789")
YES_NO = ("yes", "no")
MAX_EXPLANATION_CHARS = 200

EXPLAIN_SYSTEM = (
    "You are an interpretability researcher. A latent feature of a language model responds to "
    "some pattern in text. You see text excerpts in which the tokens where the feature is "
    "active are marked <<like this>>. Describe the pattern in one short phrase."
)
SCORE_SYSTEM = "A latent feature of a language model responds to: {explanation}"
SIMULATION_QUESTION = (
    "How strongly does the feature respond to this text, at its strongest token? Answer with "
    "one digit from 0 (not at all) to 9 (as strongly as it ever does)."
)
DETECTION_QUESTION = "Does this text contain what the feature responds to? Answer yes or no."
FUZZING_QUESTION = (
    "The tokens marked <<like this>> are claimed to be where the feature is active. Is that "
    "claim right, given what the feature responds to? Answer yes or no."
)


def active_marks(example: Example, fraction: float = MARK_FRACTION) -> set[int]:
    if example.value <= 0:
        return set()
    cut = fraction * example.value
    marks = {i for i, a in enumerate(example.acts) if a > 0 and a >= cut}
    return marks | {example.peak}


def excerpt(tokens: Sequence[str], marks: Iterable[int] = ()) -> str:
    marked = set(marks)
    parts, inside = [], False
    for i, tok in enumerate(tokens):
        tok = tok.replace("\r", "").replace("\n", "\\n")
        if i in marked and not inside:
            parts.append("<<")
            inside = True
        elif i not in marked and inside:
            parts.append(">>")
            inside = False
        parts.append(tok)
    if inside:
        parts.append(">>")
    return "".join(parts).strip()


def explain_messages(
    active: Sequence[Example], inactive: Sequence[Example]
) -> tuple[tuple[str, str], ...]:
    lines = ["Excerpts where the feature is active (strongest first):"]
    lines += [f"{i}. {excerpt(e.tokens, active_marks(e))}" for i, e in enumerate(active, 1)]
    if inactive:
        lines.append("Excerpts where the feature is not active:")
        lines += [f"{i}. {excerpt(e.tokens)}" for i, e in enumerate(inactive, 1)]
    lines.append("What does the feature respond to? Reply with one short phrase only.")
    return (("system", EXPLAIN_SYSTEM), ("user", "\n".join(lines)))


def score_messages(explanation: str, text: str, question: str) -> tuple[tuple[str, str], ...]:
    system = SCORE_SYSTEM.format(explanation=explanation or "(no explanation)")
    return (("system", system), ("user", f"Text: {text}\n\n{question}"))


_PREFIX = re.compile(
    r"^\s*(?:explanation|answer|pattern|feature|phrase)\s*[:\-]\s*|"
    r"^\s*(?:the\s+)?(?:feature|latent|pattern)\s+(?:responds|fires|activates|is active)\s+"
    r"(?:to|on|for)\s+",
    re.IGNORECASE,
)


def parse_explanation(text: str) -> tuple[str, bool]:
    """(cleaned explanation, malformed). Keeps the first non-empty line, drops a leading
    'Explanation:' or 'The feature responds to', surrounding quotes and a trailing full stop."""
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    previous = None
    while line != previous:
        previous = line
        line = _PREFIX.sub("", line).strip().strip("\"'`*").strip()
    line = line.rstrip(".").strip()[:MAX_EXPLANATION_CHARS]
    malformed = not re.search(r"[A-Za-z0-9]", line)
    return ("" if malformed else line), malformed


_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_DIGIT = re.compile(r"(?<![0-9])([0-9]|10)(?![0-9])")


def parse_yes_no(text: str) -> bool | None:
    found = _YES_NO.search(text or "")
    return None if found is None else found.group(1).lower() == "yes"


def parse_digit(text: str) -> float | None:
    found = _DIGIT.search(text or "")
    return None if found is None else min(float(found.group(1)), 9.0)
