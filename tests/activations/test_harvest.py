"""Harvest: exact readback, manifest contents, exact resume after a kill, clear errors."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from harvest_helpers import SMALL, cli, small_harvest

from saeprobe.activations import harvest as harvest_module
from saeprobe.activations.harvest import HarvestConfig, harvest
from saeprobe.activations.store import ActivationStore
from saeprobe.activations.windows import plain_windows
from saeprobe.errors import DataError, SaeprobeError


def _docs(corpus):
    return [json.loads(line)["text"] for line in corpus.read_text().splitlines()]


def _shard_hashes(out):
    manifest = json.loads((out / "manifest.json").read_text())
    return [s["files"] for s in manifest["shards"]]


def test_readback_equals_hidden_states_of_every_layer(minilm, corpus, store):
    acts = ActivationStore(store)
    tokens = acts.tokens()
    docs = _docs(corpus)
    for doc_id in (0, 5):
        window = next(plain_windows(minilm.tokenizer, doc_id, docs[doc_id], SMALL["context"]))
        with torch.no_grad():
            hidden = minilm.model(
                input_ids=torch.tensor([window.input_ids]), output_hidden_states=True
            ).hidden_states
        rows = np.nonzero((tokens["doc_id"] == doc_id) & (tokens["window"] == 0))[0]
        positions = tokens["position"][rows]
        kept = [i for i, k in enumerate(window.keep) if k]
        assert positions.tolist() == kept
        assert tokens["token_id"][rows].tolist() == [window.input_ids[i] for i in kept]
        for layer in (1, 3):  # both layers from one forward pass
            expected = hidden[layer + 1][0, positions]
            torch.testing.assert_close(
                acts.activations(rows, layer), expected, atol=1e-4, rtol=1e-4
            )


def test_manifest_records_everything_needed(minilm, store):
    m = json.loads((store / "manifest.json").read_text())
    assert m["n_tokens"] == 3000 and m["d_model"] == 384 and m["layers"] == [1, 3]
    assert m["model"] == "minilm" and len(m["model_weights_sha256"]) == 64
    assert m["dtype"] == "float32" and m["context"] == 32 and m["tokenizer"].startswith("Bert")
    assert [s["n_tokens"] for s in m["shards"]] == [512] * 5 + [440]
    assert all(len(h) == 64 for s in m["shards"] for h in s["files"].values())
    fields = set(m["token_metadata"]["fields"].split(", "))
    assert fields == {"token_id", "doc_id", "window", "position"}
    store_acts = ActivationStore(store).activations(slice(None), 3).double()
    expected_scale = store_acts.pow(2).sum(1).mean().sqrt().item()
    assert m["normalization_scale"]["3"] == pytest.approx(expected_scale, rel=1e-6)


def test_no_special_or_pad_tokens_are_stored(minilm, store):
    ids = set(ActivationStore(store).tokens()["token_id"].tolist())
    assert not ids & set(minilm.tokenizer.all_special_ids)


def test_interrupted_harvest_resumes_to_identical_shards(minilm, corpus, tmp_path, monkeypatch):
    small_harvest(minilm, corpus, tmp_path / "full", max_tokens=2000)
    calls = {"n": 0}
    real_forward = harvest_module._forward

    def dying_forward(*args):
        calls["n"] += 1
        if calls["n"] == 9:  # mid-shard, after two shards were cut
            raise KeyboardInterrupt
        return real_forward(*args)

    monkeypatch.setattr(harvest_module, "_forward", dying_forward)
    with pytest.raises(KeyboardInterrupt):
        small_harvest(minilm, corpus, tmp_path / "cut", max_tokens=2000)
    monkeypatch.setattr(harvest_module, "_forward", real_forward)
    assert not (tmp_path / "cut" / "manifest.json").exists()
    with pytest.raises(DataError, match="not empty; pass --resume"):
        small_harvest(minilm, corpus, tmp_path / "cut", max_tokens=2000)
    with pytest.raises(DataError, match="different settings \\(context\\)"):
        small_harvest(minilm, corpus, tmp_path / "cut", resume=True, max_tokens=2000, context=64)
    small_harvest(minilm, corpus, tmp_path / "cut", resume=True, max_tokens=2000)
    assert _shard_hashes(tmp_path / "cut") == _shard_hashes(tmp_path / "full")


def test_sigkill_mid_harvest_then_resume_is_exact(corpus, tmp_path):
    args = ["harvest", "--model", "minilm", "--layer", "3", "--data", str(corpus)]
    args += ["--context", "32"]
    args += ["--batch-size", "4", "--shard-tokens", "256", "--max-tokens", "4000", "--no-progress"]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "saeprobe.cli", *args, "--out", str(out)])
    state = out / "state" / "rank00.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and len(json.loads(state.read_text())["shards"]) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the harvest finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists()
    r = cli(*args, "--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    store = ActivationStore(out)  # verifies every checksum
    assert store.n_tokens == 4000
    meta = store.tokens()
    keys = list(zip(*(meta[f].tolist() for f in ("doc_id", "window", "position")), strict=True))
    assert len(set(keys)) == len(keys)  # no duplicated tokens
    r = cli(*args, "--out", str(tmp_path / "clean"))
    assert r.returncode == 0, r.stderr
    assert _shard_hashes(out) == _shard_hashes(tmp_path / "clean")  # no missing tokens either


def test_chat_harvest_stores_only_user_tokens(minilm, corpus, tmp_path):
    manifest = small_harvest(minilm, corpus, tmp_path / "chat", chat=True, max_tokens=300)
    assert manifest.chat and manifest.chat_template == "fallback"
    tokens = ActivationStore(tmp_path / "chat").tokens()
    first_doc = _docs(corpus)[0]
    expected = minilm.tokenizer(first_doc, add_special_tokens=False)["input_ids"]
    stored = tokens["token_id"][tokens["doc_id"] == 0].tolist()
    # A long document loses its middle: the start and the end of the user's text survive.
    half = len(stored) // 2
    assert len(stored) > 10 and stored[:half] == expected[:half]
    assert stored[half:] == expected[len(expected) - (len(stored) - half) :]
    assert tokens["position"][0] == 3  # "[CLS] user :" came first and was skipped


def test_outlier_filter_drops_and_counts_high_norm_tokens(minilm, corpus, tmp_path):
    m = small_harvest(minilm, corpus, tmp_path / "o", outlier_factor=1.05, max_tokens=1000)
    assert m.n_outliers_excluded > 0 and m.n_tokens == 1000
    acts = ActivationStore(tmp_path / "o").activations(slice(None), 3)
    norms = acts.norm(dim=1)
    assert norms.max() <= 1.05 * norms.median() * 1.5  # no token far above the median remains


def test_bfloat16_store_reads_back_as_bfloat16(minilm, corpus, tmp_path):
    from saeprobe.lm import load_model

    lm16 = load_model("minilm", dtype=torch.bfloat16)
    cfg = HarvestConfig(
        model="minilm",
        layers=[3],
        data=str(corpus),
        out=tmp_path / "bf",
        dtype="bfloat16",
        max_tokens=600,
        **SMALL,
    )
    harvest(cfg, lm=lm16)
    store = ActivationStore(tmp_path / "bf")
    x = store.activations([0, 1, 599], 3)
    assert x.dtype == torch.bfloat16 and x.shape == (3, 384) and torch.isfinite(x.float()).all()


def test_default_corpus_needs_no_data_argument(minilm, tmp_path):
    cfg = HarvestConfig(model="minilm", layers=[2], out=tmp_path / "d", max_tokens=400, **SMALL)
    manifest = harvest(cfg, lm=minilm)
    assert manifest.data == "python-docs" and manifest.n_tokens == 400


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "no-such-model"], "cannot load model 'no-such-model'"),
        (["--layer", "6"], "layer 6 is out of range for minilm (6 layers); choose 0..5"),
        (["--data", "EMPTY"], "holds no documents"),
        (["--data", "NOFIELD"], "has no field 'text'; pass --field with one of: body"),
        (["--data", "/nonexistent/x.jsonl"], "not found"),
        (["--dtype", "float32", "--context", "1"], "context"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "nofield.jsonl").write_text('{"body": "hello"}\n')
    args = [
        {"EMPTY": str(tmp_path / "empty.txt"), "NOFIELD": str(tmp_path / "nofield.jsonl")}.get(a, a)
        for a in args
    ]
    base = {"--layer": "3", "--model": "minilm"}
    for key, val in base.items():
        if key not in args:
            args = [key, val, *args]
    r = cli("harvest", *args, "--out", str(tmp_path / "out"), "--no-progress")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_model_error_lists_the_aliases(tmp_path):
    r = cli("harvest", "--model", "gpt9", "--layer", "0", "--out", str(tmp_path / "o"))
    assert "use an alias (smollm2, minilm)" in r.stderr


def test_finished_store_is_not_overwritten(minilm, corpus, store):
    with pytest.raises(SaeprobeError, match="already holds a finished store"):
        small_harvest(minilm, corpus, store, layers=[1, 3], max_tokens=3000)


def test_torchrun_two_ranks_write_one_manifest_covering_all_tokens(minilm, corpus, tmp_path):
    args = ["--model", "minilm", "--layer", "3", "--data", str(corpus), "--context", "32"]
    args += ["--shard-tokens", "700", "--no-autocast"]
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    r = subprocess.run(
        [*run, "-m", "saeprobe.cli", "harvest", *args, "--out", str(tmp_path / "ranks")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    small_harvest(minilm, corpus, tmp_path / "single", shard_tokens=700)
    ranks, single = ActivationStore(tmp_path / "ranks"), ActivationStore(tmp_path / "single")
    assert ranks.manifest.world_size == 2 and ranks.n_tokens == single.n_tokens
    assert {s.rank for s in ranks.manifest.shards} == {0, 1}
    tokens = ranks.tokens()
    rank_of_shard = np.repeat(
        [s.rank for s in ranks.manifest.shards], [s.n_tokens for s in ranks.manifest.shards]
    )
    assert (tokens["doc_id"] % 2 == rank_of_shard).all()  # rank r took documents r, r+2, ...

    def keyed(store):
        t = store.tokens()
        return {
            k: i for i, k in enumerate(zip(t["doc_id"], t["window"], t["position"], strict=True))
        }

    a, b = keyed(ranks), keyed(single)
    assert a.keys() == b.keys()
    keys = list(a)
    torch.testing.assert_close(
        ranks.activations([a[k] for k in keys], 3),
        single.activations([b[k] for k in keys], 3),
        atol=1e-4,
        rtol=1e-4,
    )
