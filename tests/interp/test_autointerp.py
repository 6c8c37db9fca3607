"""Autointerp: known answers for the scores, the aggregates and the baseline; the whole stage on
tiny records with the baseline (dead latents excluded, malformed output survived, resume)."""

import json

import numpy as np
import pytest

from saeprobe.errors import ConfigError, DataError
from saeprobe.interp.aggregate import aggregate, sample_latents
from saeprobe.interp.autointerp import PROGRESS_FILE, AutointerpConfig, run_autointerp
from saeprobe.interp.backends import Reply, Usage, parse_spec
from saeprobe.interp.backends import baseline as base
from saeprobe.interp.explain import Explainer, ExplainInput
from saeprobe.interp.prompts import excerpt, parse_digit, parse_explanation, parse_yes_no
from saeprobe.interp.records import Example, LatentRecords
from saeprobe.interp.score import (
    HeldOut,
    Scorer,
    auroc,
    balanced_accuracy,
    build_task,
    finish,
    quantise,
    spearman,
)


def ex(tokens, acts):
    acts = [float(a) for a in acts]
    peak = int(np.argmax(acts))
    return Example(list(tokens), acts, max(acts), peak, 0)


# A planted latent: fires on " cat", twice as strongly after " big".
ACTIVE = [
    ex([" the", " big", " cat", " sat"], [0, 0, 2.0, 0]),
    ex([" a", " cat", " ran"], [0, 1.0, 0]),
    ex([" my", " big", " cat"], [0, 0, 2.0]),
    ex([" one", " cat"], [0, 1.0]),
]
INACTIVE = [ex([" the", " dog", " sat"], [0, 0, 0]), ex([" a", " bird"], [0, 0])]


def test_metric_known_answers():
    assert spearman([0, 1, 2, 3], [0, 2, 4, 6]) == pytest.approx(1.0)
    assert spearman([0, 1, 2, 3], [3, 2, 1, 0]) == pytest.approx(-1.0)
    assert spearman([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0)
    assert spearman([0, 1, 2], [5, 5, 5]) == 0.0  # a constant prediction informs nothing
    assert spearman([1, 1, 1], [0, 1, 2]) is None  # nothing to rank: not scorable
    assert balanced_accuracy([1, 1, 1, 0], [1, 0, 1, 0]) == pytest.approx((2 / 3 + 1) / 2)
    assert balanced_accuracy([1, 1], [1, 1]) is None
    assert auroc([1, 1, 0, 0], [0.9, 0.4, 0.4, 0.1]) == pytest.approx((1 + 0.5 + 1 + 1) / 4)
    assert [quantise(v, 2.0) for v in (0, 0.01, 1.0, 2.0, 3.0)] == [0, 1, 5, 9, 9]


def test_aggregate_known_answers():
    agg = aggregate([1.0, 0.0, 0.5, 0.5], [0.1, 0.3, 0.3, 0.3], n_bootstrap=200, n_bins=2)
    assert agg["uniform_mean"] == pytest.approx(0.5)
    assert agg["frequency_weighted_mean"] == pytest.approx((0.1 + 0.15 + 0.15) / 1.0)
    for key in ("uniform_mean", "frequency_weighted_mean"):
        assert agg[f"{key}_ci_low"] <= agg[key] <= agg[f"{key}_ci_high"]
    bins = agg["per_quantile"]
    assert [b["n"] for b in bins] == [2, 2]
    assert bins[0]["frequency_min"] == pytest.approx(0.1) and bins[0]["mean"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="dead latents"):
        aggregate([0.5], [0.0])


def test_frequency_sampling_prefers_frequent_latents():
    freq = np.array([0.0, 0.001, 0.001, 0.001, 0.5, 0.5])
    live = np.flatnonzero(freq > 0)
    picks = [tuple(sample_latents(live, freq, 2, "frequency", s)) for s in range(50)]
    assert sum((4, 5) == p for p in picks) > 35
    assert set(sample_latents(live, freq, 9, "uniform", 0)) == set(live)
    with pytest.raises(DataError, match="no live latent"):
        sample_latents(np.array([], dtype=int), freq, 3, "uniform", 0)


def test_baseline_recovers_a_planted_token_latent():
    text = base.baseline_explanation(ACTIVE, INACTIVE)
    assert base.explanation_terms(text)[0] == "cat"
    held = HeldOut(ACTIVE, INACTIVE, latent_max=2.0)
    scorer = Scorer("baseline")
    for method, expect in (("detection", 1.0), ("fuzzing", 1.0)):
        task = build_task(method, text, held, seed=0)
        assert finish(task, scorer.predict(method, task.items))["score"] == expect
    task = build_task("simulation", text, held, seed=0)
    result = finish(task, scorer.predict("simulation", task.items))
    assert result["score"] > 0.7  # presence is right; the strength after " big" is not modelled


def test_lenient_parsing():
    assert parse_explanation('Explanation: the word "cat".\nMore text') == ('the word "cat"', False)
    assert parse_explanation("The feature responds to animals.") == ("animals", False)
    assert parse_explanation("  ***  ") == ("", True)
    assert parse_yes_no("Yes, it does") is True and parse_yes_no("NO.") is False
    assert parse_yes_no("maybe") is None
    assert parse_digit("I'd say 7/9") == 7.0 and parse_digit("ten") is None
    assert excerpt([" a", " cat", "\n", " sat"], {1}) == "a<< cat>>\\n sat"


class Garbage:
    """A backend that answers everything with unusable text: the run must still finish."""

    name = "garbage"

    def __init__(self):
        self.usage = Usage()

    def complete(self, requests):
        return [Reply("~~~", None) for _ in requests]


def test_malformed_replies_are_counted_not_fatal():
    explained = Explainer("x", Garbage()).explain([ExplainInput(ACTIVE, INACTIVE)])[0]
    assert explained.malformed and explained.text == ""
    task = build_task("detection", "", HeldOut(ACTIVE, INACTIVE, 2.0), seed=0)
    result = finish(task, Scorer("x", Garbage()).predict("detection", task.items))
    assert result["malformed"] == len(task.items) and result["score"] == 0.5


def test_backend_specs():
    assert parse_spec("baseline") == ("baseline", None)
    assert parse_spec("hf:smollm2") == ("hf", "smollm2")
    assert parse_spec("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    for bad in ("gpt", "hf:", "openai", "baseline:x"):
        with pytest.raises(ConfigError, match="not one of baseline"):
            parse_spec(bad)


def test_baseline_run_end_to_end_and_resume(tiny_records, tiny_sae, tmp_path):
    cfg = AutointerpConfig(
        latents=tiny_records, out=tmp_path / "ai", sae=tiny_sae, explainer="baseline",
        scoring=["simulation", "detection", "fuzzing"], n_latents=12, n_bootstrap=50,
        progress=False, chunk=4,
    )  # fmt: skip
    report = run_autointerp(cfg, log=lambda _: None)
    saved = json.loads((tmp_path / "ai" / "autointerp.json").read_text())
    assert saved["uniform_mean"] == report["uniform_mean"]
    rec = LatentRecords(tiny_records)
    counts = report["counts"]
    assert counts["dead"] == int((rec.frequency == 0).sum()) > 0
    scored = [r["latent"] for r in report["latents"]]
    assert len(scored) == 12 and all(rec.frequency[i] > 0 for i in scored)
    for m in ("simulation", "detection", "fuzzing"):
        block = report["scores"][m]
        assert block["frequency_weighted_mean_ci_low"] <= block["frequency_weighted_mean"]
        assert sum(b["n"] for b in block["per_quantile"]) == block["n"]
    assert report["scoring"] == "simulation"
    assert report["uniform_mean"] == report["scores"]["simulation"]["uniform_mean"]
    # Resume: keep the first chunk's lines only, run again, same answer, fewer latents redone.
    progress = tmp_path / "ai" / PROGRESS_FILE
    progress.write_text("".join(progress.read_text().splitlines(True)[:4]) + '{"trunc')
    lines = []
    again = run_autointerp(cfg, log=lines.append)
    assert lines == ["resuming: 4 of 12 latents already scored"]
    assert [r["scores"] for r in again["latents"]] == [r["scores"] for r in report["latents"]]


def test_records_of_another_sae(tiny_records, tiny_store, tmp_path):
    from conftest import make_sae

    other = make_sae(tmp_path / "other", tiny_store, seed=1)
    cfg = AutointerpConfig(latents=tiny_records, out=tmp_path / "o", sae=other,
                           explainer="baseline")  # fmt: skip
    with pytest.raises(DataError, match="collected for another SAE"):
        run_autointerp(cfg)


def test_heldout_spans_repeating_explainer_text_are_dropped():
    from saeprobe.interp.autointerp import _inputs

    class Stub:
        max_activation = np.array([2.0])

        def examples(self, latent, part, kind):
            dup = ex([" the", " big", " cat"], [0, 0, 2.0])  # the same paragraph twice
            if kind == "random":
                return [ex([" a", " dog"], [0, 0])]
            if part == "explain":
                return [dup] if kind == "top" else []
            return [dup, ex([" one", " cat"], [0, 1.0])] if kind == "top" else []

    cfg = AutointerpConfig(latents=".", out=".", explainer="baseline")
    explain, held = _inputs(Stub(), 0, cfg)
    assert [e.tokens for e in explain.active] == [[" the", " big", " cat"]]
    assert [e.tokens for e in held.active] == [[" one", " cat"]]
