"""LLM backends for autointerp, chosen by a spec string:

    baseline          no LLM: deterministic token matching (`baseline.py`), a documented lower
                      bound that runs anywhere
    hf:MODEL          a local causal LM through transformers (`hf.py`); hf:smollm2 is the default
    openai:MODEL      any OpenAI-compatible chat-completions server (`openai.py`)

The LLM backends answer `Request`s: chat messages, a token budget, and optionally the closed set
of answers (`choices`) the prompt asks for. When the backend can read log-probabilities it
returns the probability of each choice (`Reply.probs`, normalised over the choices); otherwise
only text, which the caller parses leniently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from saeprobe.errors import ConfigError

DEFAULT_BACKEND = "hf:smollm2"


@dataclass(frozen=True)
class Request:
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    max_tokens: int = 64
    choices: tuple[str, ...] | None = None

    def as_messages(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]


@dataclass
class Reply:
    text: str
    probs: dict[str, float] | None = None  # over `choices`, when log-probabilities were read
    error: str | None = None  # the request failed for good (after retries)


@dataclass
class Usage:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "failures": self.failures,
            **self.extra,
        }


class LLMBackend(Protocol):
    name: str
    usage: Usage

    def complete(self, requests: Sequence[Request]) -> list[Reply]: ...


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'baseline' | 'hf:MODEL' | 'openai:MODEL' -> (kind, model)."""
    kind, sep, model = spec.partition(":")
    if kind == "baseline" and not sep:
        return "baseline", None
    if kind in ("hf", "openai") and model:
        return kind, model
    raise ConfigError(
        f"backend {spec!r} is not one of baseline, hf:MODEL (e.g. {DEFAULT_BACKEND}) or "
        "openai:MODEL; fix --explainer / --scorer"
    )


@dataclass(frozen=True)
class BackendOptions:
    """How to reach and run an LLM backend. The API key is deliberately not a field here: it is
    handed to the OpenAI backend directly and never enters a config that may be written out."""

    base_url: str | None = None
    cache_dir: str | None = None
    concurrency: int = 4
    max_retries: int = 4
    timeout: float = 60.0
    device: str = "cpu"
    batch_size: int = 8


def make_llm(spec: str, options: BackendOptions, api_key: str | None = None, shared=None):
    """The LLM behind `spec`, or None for the baseline. `shared` maps specs to backends already
    built, so an explainer and a scorer with the same spec share one model."""
    kind, model = parse_spec(spec)
    if kind == "baseline":
        return None
    if shared is not None and spec in shared:
        return shared[spec]
    if kind == "hf":
        from saeprobe.interp.backends.hf import HFBackend

        backend = HFBackend(model, device=options.device, batch_size=options.batch_size)
    else:
        from saeprobe.interp.backends.openai import OpenAIBackend

        backend = OpenAIBackend(
            model,
            base_url=options.base_url,
            api_key=api_key,
            cache_dir=options.cache_dir,
            concurrency=options.concurrency,
            max_retries=options.max_retries,
            timeout=options.timeout,
        )
    if shared is not None:
        shared[spec] = backend
    return backend
