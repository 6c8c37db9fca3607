"""Rollouts: a chat model's own responses, written resumably as chat JSONL, and read back."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from harvest_helpers import cli

from saeprobe.data import rollouts
from saeprobe.data.prompts.default_prompts import HARMLESS_PROMPTS
from saeprobe.data.rollouts import RolloutsConfig, iter_chats, partial_path, run_rollouts
from saeprobe.errors import DataError
from saeprobe.lm.generate import Sampling, generate_responses, plan_batches

# Small and quick on the random tiny model, which never emits its end-of-sequence token.
TINY = {"limit": 8, "batch_size": 2, "max_new_tokens": 4, "progress": False, "device": "cpu"}


def _cfg(model_path, out, **kw) -> RolloutsConfig:
    return RolloutsConfig(**{"model": str(model_path), "out": out, **TINY, **kw})


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class _Killed(Exception):
    pass


def _interrupted_run(monkeypatch, cfg, lm, n_batches: int) -> None:
    """Run until `n_batches` batches are in the partial file, then fail the next one."""
    real, calls = rollouts._generate_batch, []

    def dies_later(*args, **kw):
        if len(calls) == n_batches:
            raise _Killed
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(rollouts, "_generate_batch", dies_later)
    with pytest.raises(_Killed):
        run_rollouts(cfg, lm=lm)
    monkeypatch.undo()


@pytest.fixture(scope="module")
def reference(tiny_llama, tiny_llama_path, tmp_path_factory):
    """An uninterrupted greedy run with the TINY settings."""
    out = tmp_path_factory.mktemp("rollouts") / "ref.jsonl"
    run_rollouts(_cfg(tiny_llama_path, out), lm=tiny_llama)
    return out


def test_rows_follow_prompt_order_with_both_turns(reference, tiny_llama_path):
    rows = _rows(reference)
    assert [row["id"] for row in rows] == list(range(8))
    for row, prompt in zip(rows, HARMLESS_PROMPTS[:8], strict=True):
        user, assistant = row["messages"]
        assert user == {"role": "user", "content": prompt}
        assert assistant["role"] == "assistant" and assistant["content"]
        assert row["model"] == str(tiny_llama_path)
        # The random model never says its end-of-sequence token, so every row runs to the limit.
        assert (row["finish_reason"], row["n_response_tokens"]) == ("length", 4)
    assert not partial_path(reference).exists()


def test_left_padding_gives_the_same_greedy_response_alone_and_batched(tiny_llama):
    tok = tiny_llama.tokenizer
    short = "How do I bake bread?"
    long = "Write a long, detailed essay on the fall of the Roman Empire, with dates and sources."
    side = tok.padding_side
    alone = generate_responses(tiny_llama.model, tok, [short], max_new_tokens=8)
    batched = generate_responses(tiny_llama.model, tok, [long, short], max_new_tokens=8)
    # Exact token equality holds here: padded positions are masked and position ids skip them.
    assert batched[1] == alone[0]
    assert tok.padding_side == side  # the shared tokenizer is left as it was


def test_sampling_is_reproducible_from_its_seed(tiny_llama):
    model, tok = tiny_llama.model, tiny_llama.tokenizer
    prompts = ["How do I bake bread?", "Name a colour."]
    draw = [generate_responses(model, tok, prompts, 8, Sampling(seed=s)) for s in (1, 1, 2)]
    greedy = generate_responses(model, tok, prompts, 8)
    assert draw[0] == draw[1]
    assert draw[0] != draw[2] and draw[0] != greedy


def test_batches_are_a_fixed_function_of_the_lengths():
    lengths = [5, 3, 9, 3, 7, 5, 1]
    plan = plan_batches(lengths, 3)
    assert plan == [[6, 1, 3], [0, 5, 4], [2]]  # shortest first, ties in prompt order
    assert plan == plan_batches(list(lengths), 3)


@pytest.mark.parametrize("sample", [False, True])
def test_resume_drops_a_torn_line_and_a_half_batch(
    monkeypatch, tiny_llama, tiny_llama_path, tmp_path, sample
):
    settings = {"sample": sample, "temperature": 0.8, "top_p": 0.9, "seed": 3}
    ref = tmp_path / "ref.jsonl"
    run_rollouts(_cfg(tiny_llama_path, ref, **settings), lm=tiny_llama)

    cfg = _cfg(tiny_llama_path, tmp_path / "out.jsonl", **settings)
    _interrupted_run(monkeypatch, cfg, tiny_llama, n_batches=2)
    partial = partial_path(cfg.out)
    lines = partial.read_text().splitlines(keepends=True)
    assert len(lines) == 1 + 2 * 2  # settings line, then two batches of two rows
    # What a kill mid-write leaves: one row of the next batch and half of its second row.
    next_batch = [json.dumps({"batch": 2, "row": row}) for row in _rows(ref)[:2]]
    with open(partial, "a") as fh:
        fh.write(next_batch[0] + "\n" + next_batch[1][:25])

    summary = run_rollouts(cfg, resume=True, lm=tiny_llama)
    assert cfg.out.read_bytes() == ref.read_bytes()
    assert (summary.n_rows, summary.n_generated) == (8, 4)
    assert not partial.exists()


def test_resume_with_other_settings_is_refused(monkeypatch, tiny_llama, tiny_llama_path, tmp_path):
    cfg = _cfg(tiny_llama_path, tmp_path / "out.jsonl")
    _interrupted_run(monkeypatch, cfg, tiny_llama, n_batches=1)
    for change, named in [
        ({"max_new_tokens": 7}, "max_new_tokens"),
        ({"limit": 7}, "prompts"),
        ({"sample": True}, "sample"),
        ({"model": "smollm2"}, "model"),
    ]:
        with pytest.raises(DataError, match=f"different settings \\({named}") as err:
            run_rollouts(cfg.model_copy(update=change), resume=True, lm=tiny_llama)
        assert "\n" not in str(err.value) and "original settings" in str(err.value)
    # Sampling knobs do not matter to a greedy run, so changing them is no reason to refuse.
    summary = run_rollouts(cfg.model_copy(update={"seed": 9}), resume=True, lm=tiny_llama)
    assert summary.n_rows == 8


def test_existing_output_needs_resume(monkeypatch, reference, tiny_llama, tiny_llama_path):
    with pytest.raises(DataError, match="pass --resume .* or choose another --out"):
        run_rollouts(_cfg(tiny_llama_path, reference), lm=tiny_llama)
    out = reference.with_name("unfinished.jsonl")
    _interrupted_run(monkeypatch, _cfg(tiny_llama_path, out), tiny_llama, n_batches=1)
    with pytest.raises(DataError, match=r"unfinished run\); pass --resume"):
        run_rollouts(_cfg(tiny_llama_path, out), lm=tiny_llama)


def test_blank_prompts_are_skipped_and_bad_files_fail(tiny_llama, tiny_llama_path, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("Name a colour.\n\n   \nName a fruit.\n")
    out = tmp_path / "o.jsonl"
    run_rollouts(_cfg(tiny_llama_path, out, prompts=str(prompts)), lm=tiny_llama)
    assert [r["messages"][0]["content"] for r in _rows(out)] == ["Name a colour.", "Name a fruit."]

    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"instruction": "Name a colour."}\n')
    for source, field, message in [
        (empty, None, "holds no documents"),
        (tmp_path / "missing.txt", None, "not found; check the path to --prompts"),
        (jsonl, "prompt", "no field 'prompt'; pass --field with one of: instruction"),
    ]:
        cfg = _cfg(tiny_llama_path, tmp_path / "x.jsonl", prompts=str(source), field=field)
        with pytest.raises(DataError, match=message):
            run_rollouts(cfg, lm=tiny_llama)
    with pytest.raises(DataError, match="exceeds the model's context"):
        cfg = _cfg(tiny_llama_path, tmp_path / "x.jsonl", max_new_tokens=10**5)
        run_rollouts(cfg, lm=tiny_llama)
    assert not (tmp_path / "x.jsonl").exists() and not partial_path(tmp_path / "x.jsonl").exists()


def test_sigkill_then_cli_resume_matches_uninterrupted_run(tiny_llama, tiny_llama_path, tmp_path):
    settings = {"limit": 12, "batch_size": 1}
    ref = tmp_path / "ref.jsonl"
    run_rollouts(_cfg(tiny_llama_path, ref, **settings), lm=tiny_llama)

    out = tmp_path / "out.jsonl"
    args = ["rollouts", "--model", str(tiny_llama_path), "--out", str(out), "--limit", "12"]
    args += ["--batch-size", "1", "--max-new-tokens", "4", "--device", "cpu", "--no-progress"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "saeprobe.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    partial, deadline = partial_path(out), time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if partial.exists() and partial.read_bytes().count(b"\n") >= 1 + 3:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and partial.exists()

    refused = cli(*args)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1
    assert "pass --resume" in refused.stderr

    r = cli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert "12 rollouts" in r.stdout and "12 hit the 4-token limit" in r.stdout
    assert out.read_bytes() == ref.read_bytes()
    assert [row["id"] for row in _rows(out)] == list(range(12))
    assert not partial.exists()


def test_smollm2_answers_plausibly(smollm2, tmp_path):
    prompts = tmp_path / "p.jsonl"
    questions = ["What is the capital of France?", "Say hello."]
    prompts.write_text("".join(json.dumps({"q": q}) + "\n" for q in questions))
    out = tmp_path / "chat.jsonl"
    cfg = RolloutsConfig(
        prompts=str(prompts), field="q", out=out, max_new_tokens=12, progress=False, device="cpu"
    )
    summary = run_rollouts(cfg, lm=smollm2)
    france, hello = _rows(out)
    assert "Paris" in france["messages"][1]["content"]
    # A short complete answer ends at <|im_end|>, which is neither counted nor decoded.
    assert france["finish_reason"] == "eos" and 0 < france["n_response_tokens"] < 12
    assert "<|im_end|>" not in france["messages"][1]["content"]
    assert hello["model"] == "smollm2" and hello["messages"][1]["content"]
    assert summary.n_rows == 2


def test_iter_chats_reads_rollouts_and_system_turns(reference, tmp_path):
    chats = list(iter_chats(reference))
    assert chats == [row["messages"] for row in _rows(reference)]
    f = tmp_path / "c.jsonl"
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    f.write_text(json.dumps({"messages": turns, "extra": 1}) + "\n")
    assert list(iter_chats(f)) == [turns]


GOOD = json.dumps({"messages": [{"role": "user", "content": "Hi"}]})


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"messages": [', "is not valid JSON"),
        (json.dumps({"text": "Hi"}), "no non-empty 'messages' list"),
        (json.dumps({"messages": []}), "no non-empty 'messages' list"),
        (json.dumps({"messages": ["Hi"]}), "message 0 is not an object"),
        (json.dumps({"messages": [{"role": "bot", "content": "Hi"}]}), "role 'bot'; use one of"),
        (json.dumps({"messages": [{"role": "user", "content": " "}]}), "message 0 has no content"),
        (json.dumps({"messages": [{"role": "user", "content": 3}]}), "message 0 has no content"),
    ],
)
def test_iter_chats_names_the_bad_line(tmp_path, line, message):
    f = tmp_path / "c.jsonl"
    f.write_text(GOOD + "\n" + line + "\n")
    with pytest.raises(DataError, match=message) as err:
        list(iter_chats(f))
    assert f"{f}:2" in str(err.value) and "\n" not in str(err.value)


def test_skip_and_limit_select_a_disjoint_slice_of_prompts(tmp_path):
    from saeprobe.data.rollouts import load_prompts

    train = load_prompts(RolloutsConfig(out=tmp_path / "a.jsonl", limit=5))
    held_out = load_prompts(RolloutsConfig(out=tmp_path / "b.jsonl", skip=5, limit=3))
    assert train == list(HARMLESS_PROMPTS[:5]) and held_out == list(HARMLESS_PROMPTS[5:8])
    assert load_prompts(RolloutsConfig(out=tmp_path / "c.jsonl", skip=2))[0] == HARMLESS_PROMPTS[2]
