"""Any OpenAI-compatible chat-completions server as an autointerp backend (`openai:MODEL`):
OpenAI, vLLM, Ollama, llama.cpp's server. Standard library only (urllib).

- **Where**: the base URL (…/v1) and the API key come from arguments (CLI flags) or the
  environment (`OPENAI_BASE_URL`, `OPENAI_API_KEY`). The key is only ever put in the
  Authorization header: it is not stored on this object's public fields, not part of the cache
  key, never written to the cache, and scrubbed from every error message.
- **Robustness**: transport failures, timeouts, HTTP 408/409/429/5xx and replies that are not a
  chat-completion JSON are retried with exponential backoff (a `Retry-After` header is honoured,
  capped); a request that still fails becomes a `Reply` with `error` set, counted in
  `usage.failures`, and the run carries on. Authentication errors (401/403) and an unreachable
  server stop the run with a one-line error.
- **Concurrency**: at most `concurrency` requests in flight (a thread pool).
- **Cache**: each successful reply is stored under `cache_dir/<sha256>.json`, keyed by the
  server's address, the model and the request body; a repeated request costs nothing.
- **Tokens**: `usage` counts requests, prompt and completion tokens (as the server reports them),
  cache hits, retries and failures.

For `choices` requests the body asks for `logprobs` with the top 10 alternatives of each token;
each choice's probability is the mass of the first token's alternatives that spell it (case and
surrounding spaces ignored). Servers that return no log-probabilities still work: the reply text
is then parsed by the caller.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from saeprobe.errors import ConfigError
from saeprobe.interp.backends import Reply, Request, Usage
from saeprobe.io_utils import atomic_write_json

DEFAULT_BASE_URL = "https://api.openai.com/v1"
TOP_LOGPROBS = 10
_RETRIABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class _Retriable(Exception):
    pass


class OpenAIBackend:
    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        cache_dir: str | Path | None = None,
        concurrency: int = 4,
        max_retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 60.0,
        check: bool = True,
    ):
        self.name = f"openai:{model}"
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        parsed = urlparse(self.base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(
                f"--base-url {self.base_url!r} is not an http(s) URL; give e.g. "
                "http://127.0.0.1:8080/v1"
            )
        if parsed.username or parsed.password:
            raise ConfigError("--base-url must not carry credentials; pass the key with --api-key")
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        # Kept in a closure rather than an attribute, so that no repr, vars() or pickling of
        # this object carries it.
        self._auth = (lambda: key) if key else (lambda: None)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.concurrency = max(1, concurrency)
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self.timeout = timeout
        self.usage = Usage()
        self._lock = threading.Lock()
        if check:
            self.check()

    # --- plumbing ------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        key = self._auth()
        return text.replace(key, "***") if key else text

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._auth()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def check(self) -> None:
        """Fail fast, in one line, when nothing answers at the base URL or the key is refused."""
        req = urllib.request.Request(f"{self.base_url}/models", headers=self._headers())
        try:
            with urllib.request.urlopen(req, timeout=min(self.timeout, 10.0)) as resp:
                resp.read()
        except urllib.error.HTTPError as err:
            if err.code in (401, 403):
                raise ConfigError(
                    f"the server at {self.base_url} refused the API key (HTTP {err.code}); check "
                    "--api-key or OPENAI_API_KEY"
                ) from None
            # Other statuses: something answers; /models is optional on some servers.
        except (urllib.error.URLError, OSError) as err:
            reason = self._scrub(str(getattr(err, "reason", err)))
            raise ConfigError(
                f"cannot reach an OpenAI-compatible server at {self.base_url} ({reason}); start "
                "it or fix --base-url / OPENAI_BASE_URL"
            ) from None

    def _body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.as_messages(),
            "max_tokens": request.max_tokens,
            "temperature": 0,
        }
        if request.choices is not None:
            body |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
        return body

    def _cache_path(self, body: dict[str, Any]) -> Path | None:
        if self.cache_dir is None:
            return None
        key = json.dumps({"server": self.base_url, "body": body}, sort_keys=True)
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.base_url}/chat/completions", data=data, headers=self._headers(), method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            if err.code in (401, 403):
                raise ConfigError(
                    f"the server at {self.base_url} refused the API key (HTTP {err.code}); check "
                    "--api-key or OPENAI_API_KEY"
                ) from None
            if err.code in _RETRIABLE_STATUS:
                raise _Retriable(f"HTTP {err.code}", _retry_after(err)) from None
            raise _Failed(f"HTTP {err.code}: {self._scrub(_error_text(err))}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise _Retriable(self._scrub(str(getattr(err, "reason", err))), None) from None
        try:
            payload = json.loads(raw)
            choice = payload["choices"][0]
            if not isinstance(choice.get("message", {}).get("content", ""), str | None):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise _Retriable("the reply is not a chat completion", None) from None
        return payload

    def _one(self, request: Request) -> Reply:
        body = self._body(request)
        cache = self._cache_path(body)
        if cache is not None and cache.is_file():
            try:
                payload = json.loads(cache.read_text(encoding="utf-8"))
                with self._lock:
                    self.usage.cache_hits += 1
                return _reply(payload, request)
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                pass  # a damaged cache entry is just fetched again
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            if attempt:
                with self._lock:
                    self.usage.retries += 1
            try:
                payload = self._post(body)
            except _Retriable as err:
                last, wait = err.args[0], err.args[1]
                if attempt < self.max_retries:
                    time.sleep(_delay(self.backoff, attempt, wait))
                continue
            except _Failed as err:
                last = err.args[0]
                break
            with self._lock:
                self.usage.requests += 1
                usage = payload.get("usage") or {}
                self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
            if cache is not None:
                atomic_write_json(cache, {"model": self.model, "choices": payload["choices"]})
            return _reply(payload, request)
        with self._lock:
            self.usage.failures += 1
        return Reply("", None, error=last)

    def complete(self, requests: Sequence[Request]) -> list[Reply]:
        if self.concurrency == 1 or len(requests) <= 1:
            return [self._one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, requests))


class _Failed(Exception):
    """A request the server answered with an error that retrying would not fix."""


def _error_text(err: urllib.error.HTTPError) -> str:
    try:
        return err.read().decode("utf-8", "replace")[:200].replace("\n", " ")
    except OSError:
        return ""


def _retry_after(err: urllib.error.HTTPError) -> float | None:
    value = err.headers.get("Retry-After") if err.headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _delay(backoff: float, attempt: int, retry_after: float | None) -> float:
    base = backoff * (2**attempt)
    if retry_after is not None:
        base = max(base, min(retry_after, 30.0))
    return min(base, 30.0) * (0.75 + 0.5 * random.random())


def _reply(payload: dict[str, Any], request: Request) -> Reply:
    choice = payload["choices"][0]
    text = (choice.get("message") or {}).get("content") or ""
    probs = None
    if request.choices is not None:
        probs = _choice_probs(choice.get("logprobs"), request.choices)
    return Reply(text.strip(), probs)


def _choice_probs(logprobs: Any, choices: tuple[str, ...]) -> dict[str, float] | None:
    try:
        first = logprobs["content"][0]["top_logprobs"]
    except (TypeError, KeyError, IndexError):
        return None
    wanted = {c.lower(): c for c in choices}
    mass = dict.fromkeys(choices, 0.0)
    for alt in first or []:
        try:
            token = str(alt["token"]).strip().lower()
            value = math.exp(float(alt["logprob"]))
        except (TypeError, KeyError, ValueError, OverflowError):
            continue
        if token in wanted:
            mass[wanted[token]] += value
    total = sum(mass.values())
    if total <= 0:
        return None
    return {c: m / total for c, m in mass.items()}
