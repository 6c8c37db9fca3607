"""The `openai:` backend against a real OpenAI-compatible server: llama.cpp's server
(xllamacpp) serving SmolLM2, behind a proxy that drops, fails and corrupts some replies."""

import json

import pytest
from click.testing import CliRunner
from llama_server import FaultyProxy, llama_server

from saeprobe.cli import main
from saeprobe.errors import ConfigError
from saeprobe.interp.backends.openai import OpenAIBackend

KEY = "sk-saeprobe-test-3f9d1c2b7a"
FAULTS = {1: "drop", 3: "error500", 5: "garbage", 8: "junk"}
SMALL = [
    "--explainer", "openai:smollm2", "--scoring", "detection", "--n-latents", "2",
    "--concurrency", "2", "--no-progress",
]  # fmt: skip


def _args(records, out, url, cache):
    return [
        "autointerp", "--latents", str(records), "--out", str(out), "--base-url", url,
        "--api-key", KEY, "--cache-dir", str(cache), *SMALL,
    ]  # fmt: skip


def _small_examples(monkeypatch):
    # Fewer examples per latent than the defaults: the test budget is seconds, not minutes.
    from saeprobe.interp import autointerp

    fields = autointerp.AutointerpConfig.model_fields
    for name, value in {"explain_top": 2, "explain_quantile": 1, "explain_random": 1,
                        "score_top": 2, "score_quantile": 1, "score_random": 3}.items():  # fmt: skip
        monkeypatch.setattr(fields[name], "default", value)
    autointerp.AutointerpConfig.model_rebuild(force=True)


def test_openai_backend_real_server_with_faults(tiny_records, tmp_path, monkeypatch):
    _small_examples(monkeypatch)
    runner = CliRunner()
    with llama_server(KEY) as server, FaultyProxy(server, FAULTS) as proxy:
        cache = tmp_path / "cache"
        first = runner.invoke(main, _args(tiny_records, tmp_path / "a", proxy.url, cache))
        assert first.exit_code == 0, first.output
        posts_after_first = proxy.posts
        second = runner.invoke(main, _args(tiny_records, tmp_path / "b", proxy.url, cache))
        assert second.exit_code == 0, second.output
        assert proxy.posts == posts_after_first  # every reply came from the cache
    assert sorted(proxy.injected) == sorted(FAULTS.values())
    assert proxy.auth_headers == {f"Bearer {KEY}"}  # the key reached the server, as a header

    report = json.loads((tmp_path / "a" / "autointerp.json").read_text())
    usage = report["usage"]["explainer"]
    assert report["usage"]["shared_backend"]
    assert usage["retries"] == 3  # drop, HTTP 500 and non-JSON: each retried once
    assert usage["failures"] == 0
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    counts = report["counts"]
    junk = counts["malformed_explanations"] + counts["malformed_predictions"]["detection"]
    assert junk == 1  # the corrupted reply was parsed leniently, counted, and the run went on
    assert counts["sampled"] == 2 and report["scores"]["detection"]["n"] >= 1
    # llama.cpp returns log-probabilities, so detection has an AUROC from P(yes).
    assert any(r["details"]["detection"]["auroc"] is not None for r in report["latents"])
    cached = json.loads((tmp_path / "b" / "autointerp.json").read_text())
    assert cached["usage"]["explainer"]["cache_hits"] == usage["requests"]
    assert [r["scores"] for r in cached["latents"]] == [r["scores"] for r in report["latents"]]

    # The key is in no output, no log line, no file.
    assert KEY not in first.output + second.output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_unreachable_server_is_one_line_error(tiny_records, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(ConfigError, match="cannot reach an OpenAI-compatible server"):
        OpenAIBackend("m", base_url=url, api_key=KEY)
    result = CliRunner().invoke(main, _args(tiny_records, tmp_path / "o", url, tmp_path / "c"))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach") and KEY not in lines[0]
