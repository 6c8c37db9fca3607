"""Explain latents: from a latent's explainer examples to a short description.

An LLM explainer gets one prompt per latent (`prompts.explain_messages`: activating examples
with their active tokens marked, strongest first, then non-activating ones) and its reply is
parsed leniently (`prompts.parse_explanation`). The baseline explainer lists the latent's most
characteristic tokens (`backends/baseline.py`). An empty or unusable reply is kept as an empty
explanation, flagged `malformed`, counted, and scored like any other (it will score poorly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from saeprobe.interp.backends import Request
from saeprobe.interp.backends.baseline import baseline_explanation
from saeprobe.interp.prompts import explain_messages, parse_explanation
from saeprobe.interp.records import Example

EXPLANATION_TOKENS = 40


@dataclass(frozen=True)
class ExplainInput:
    active: list[Example]  # top examples first, then quantile examples
    inactive: list[Example]


@dataclass(frozen=True)
class Explanation:
    text: str
    malformed: bool
    raw: str
    error: str | None = None


class Explainer:
    def __init__(self, spec: str, backend=None, max_tokens: int = EXPLANATION_TOKENS):
        self.spec, self.backend, self.max_tokens = spec, backend, max_tokens

    def explain(self, inputs: Sequence[ExplainInput]) -> list[Explanation]:
        if self.backend is None:
            out = []
            for item in inputs:
                text = baseline_explanation(item.active, item.inactive)
                out.append(Explanation(text, not text, text))
            return out
        requests = [
            Request(explain_messages(item.active, item.inactive), self.max_tokens)
            for item in inputs
        ]
        out = []
        for reply in self.backend.complete(requests):
            text, malformed = parse_explanation(reply.text)
            out.append(
                Explanation(text, malformed or reply.error is not None, reply.text, reply.error)
            )
        return out
