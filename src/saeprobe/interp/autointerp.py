"""`saeprobe autointerp`: explain sampled latents, score the explanations on held-out examples,
aggregate uniformly and frequency-weighted. Reads a records directory from `saeprobe latents`.

Writes OUT/autointerp.json:

    config, records, sae, explainer, scorer, sample
    counts     d_sae, live, dead (never scored), unscorable (live but without enough held-out
               examples), sampled, scored per method, malformed explanations and predictions,
               failed requests
    usage      requests and tokens per backend (cache hits, retries, failures)
    scoring    the first method asked for; its aggregates are repeated at the top level:
               uniform_mean, frequency_weighted_mean (+ _ci_low / _ci_high), per_quantile
    scores     {method: aggregates}; detection and fuzzing also aggregate AUROC (auroc_*)
    latents    per latent: latent, frequency, explanation, score (first method), scores, details

Work is checkpointed per chunk of latents in OUT/progress.jsonl (keyed by everything the scores
depend on), so an interrupted run resumes where it stopped and a finished one is not redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm.auto import tqdm

from saeprobe.cache import cache_root
from saeprobe.errors import DataError
from saeprobe.interp.aggregate import aggregate, sample_latents
from saeprobe.interp.backends import DEFAULT_BACKEND, BackendOptions, make_llm, parse_spec
from saeprobe.interp.explain import Explainer, ExplainInput
from saeprobe.interp.records import KINDS, Example, LatentRecords
from saeprobe.interp.score import HeldOut, Scorer, build_task, finish
from saeprobe.io_utils import atomic_write_json, sha256_file
from saeprobe.sae.io import WEIGHTS_FILE

RESULT_FILE = "autointerp.json"
PROGRESS_FILE = "progress.jsonl"
# Bumped whenever the same settings would give other scores (2: held-out spans that repeat an
# explainer example's text are dropped), so that no stale progress line is ever reused.
PROTOCOL = 2


class AutointerpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latents: Path = Field(description="records directory from saeprobe latents")
    out: Path
    sae: Path | None = Field(None, description="check that the records belong to this SAE")
    explainer: str = DEFAULT_BACKEND
    scorer: str | None = Field(None, description="default: the explainer")
    scoring: list[Literal["simulation", "detection", "fuzzing"]] = Field(
        default_factory=lambda: ["simulation"], min_length=1
    )
    n_latents: int = Field(50, ge=1)
    sample: Literal["uniform", "frequency"] = "uniform"
    seed: int = 0
    n_bootstrap: int = Field(1000, ge=10)
    n_bins: int = Field(5, ge=1, description="firing-frequency bins of per_quantile")
    explain_top: int = Field(10, ge=1)
    explain_quantile: int = Field(5, ge=0)
    explain_random: int = Field(5, ge=0)
    score_top: int = Field(5, ge=0)
    score_quantile: int = Field(10, ge=0)
    score_random: int = Field(10, ge=1)
    chunk: int = Field(8, ge=1, description="latents per batch of LLM requests")
    base_url: str | None = None
    cache_dir: Path | None = Field(None, description="LLM response cache [$SAEPROBE_CACHE/llm]")
    concurrency: int = Field(4, ge=1)
    max_retries: int = Field(4, ge=0)
    timeout: float = Field(60.0, gt=0)
    device: str = "cpu"
    batch_size: int = Field(8, ge=1)
    progress: bool = True

    @field_validator("explainer", "scorer")
    @classmethod
    def _spec(cls, v: str | None) -> str | None:
        if v is not None:
            parse_spec(v)
        return v

    @field_validator("scoring")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))

    @property
    def scorer_spec(self) -> str:
        return self.scorer or self.explainer

    def run_key(self, records_key: str) -> str:
        """What the per-latent results depend on (not where they go or how fast they come)."""
        fast = {"out", "progress", "concurrency", "timeout", "device", "batch_size", "cache_dir"}
        settings = self.model_dump(mode="json", exclude=fast | {"latents", "sae", "n_bootstrap"})
        blob = json.dumps([PROTOCOL, records_key, settings], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _spread(examples: list[Example], n: int) -> list[Example]:
    """Up to n quantile examples spread over the bands, strongest band first."""
    by_band: dict[int, list[Example]] = {}
    for e in examples:
        by_band.setdefault(e.band, []).append(e)
    order = sorted(by_band, reverse=True)
    out: list[Example] = []
    depth = 0
    while len(out) < n and any(depth < len(by_band[b]) for b in order):
        out += [by_band[b][depth] for b in order if depth < len(by_band[b])]
        depth += 1
    return out[:n]


def _inputs(records: LatentRecords, latent: int, cfg: AutointerpConfig):
    """The explainer's examples and the held-out ones. Windows never repeat across the two
    parts, but a corpus can repeat text (the same paragraph on two pages), so held-out spans
    whose tokens equal an explainer example's are dropped as well."""
    top = records.examples(latent, "explain", "top")[: cfg.explain_top]
    quant = _spread(records.examples(latent, "explain", "quantile"), cfg.explain_quantile)
    rand = records.examples(latent, "explain", "random")[: cfg.explain_random]
    seen = {tuple(e.tokens) for kind in KINDS for e in records.examples(latent, "explain", kind)}

    def fresh(kind: str, n: int) -> list[Example]:
        return [
            e for e in records.examples(latent, "heldout", kind) if tuple(e.tokens) not in seen
        ][:n]

    held_active = fresh("top", cfg.score_top) + fresh("quantile", cfg.score_quantile)
    held = HeldOut(
        held_active, fresh("random", cfg.score_random), float(records.max_activation[latent])
    )
    return ExplainInput(top + quant, rand), held


def _scorable(records: LatentRecords) -> np.ndarray:
    """Live latents with explainer examples and at least two held-out activating examples and
    one non-activating one."""

    def filled(part, kind):
        return (records.array(part, kind, "row") >= 0).sum(1)

    live = records.frequency > 0
    ok = live & (filled("explain", "top") >= 1)
    ok &= filled("heldout", "top") + filled("heldout", "quantile") >= 2
    ok &= filled("heldout", "random") >= 1
    return np.flatnonzero(ok)


def _check_sae(cfg: AutointerpConfig, records: LatentRecords) -> None:
    if cfg.sae is None:
        return
    weights = Path(cfg.sae) / WEIGHTS_FILE
    if not weights.is_file():
        raise DataError(f"{cfg.sae} holds no {WEIGHTS_FILE}; point --sae at an SAE directory")
    if sha256_file(weights) != records.meta["sae"].get("weights_sha256"):
        raise DataError(
            f"the records in {records.path} were collected for another SAE "
            f"({records.meta['sae'].get('path')}), not {cfg.sae}; run saeprobe latents for it"
        )


def _read_progress(path: Path, key: str) -> dict[int, dict[str, Any]]:
    done: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        return done
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a killed run
            if row.get("key") == key:
                done[int(row["record"]["latent"])] = row["record"]
    return done


def _append_progress(path: Path, key: str, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps({"key": key, "record": r}) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _score_chunk(latents, records, cfg, explainer: Explainer, scorer: Scorer):
    inputs = [_inputs(records, int(i), cfg) for i in latents]
    explanations = explainer.explain([x for x, _ in inputs])
    results = []
    tasks = {}
    for method in cfg.scoring:
        per_latent = [
            build_task(method, e.text, held, seed=cfg.seed * 100_003 + int(i))
            for i, e, (_, held) in zip(latents, explanations, inputs, strict=True)
        ]
        flat = [item for t in per_latent for item in t.items]
        preds = scorer.predict(method, flat)
        cursor = 0
        tasks[method] = []
        for t in per_latent:
            tasks[method].append(finish(t, preds[cursor : cursor + len(t.items)]))
            cursor += len(t.items)
    for k, (latent, e) in enumerate(zip(latents, explanations, strict=True)):
        details = {m: tasks[m][k] for m in cfg.scoring}
        results.append(
            {
                "latent": int(latent),
                "frequency": float(records.frequency[latent]),
                "window_frequency": float(records.window_frequency[latent]),
                "max_activation": float(records.max_activation[latent]),
                "explanation": e.text,
                "explanation_malformed": e.malformed,
                "explanation_raw": e.raw,
                "explanation_error": e.error,
                "score": details[cfg.scoring[0]]["score"],
                "scores": {m: details[m]["score"] for m in cfg.scoring},
                "details": details,
            }
        )
    return results


def run_autointerp(cfg: AutointerpConfig, api_key: str | None = None, log=print) -> dict[str, Any]:
    """Explain and score `cfg.n_latents` sampled latents; write OUT/autointerp.json.

    `api_key` is for an `openai:` backend; it is passed straight to it and stored nowhere.
    """
    t0 = time.perf_counter()
    records = LatentRecords(cfg.latents)
    _check_sae(cfg, records)
    live = records.live
    if not live.size:
        raise DataError(
            f"the records in {cfg.latents} have no live latents (none fired on "
            f"{records.meta['n_tokens']} tokens); nothing to explain"
        )
    candidates = _scorable(records)
    chosen = sample_latents(candidates, records.frequency, cfg.n_latents, cfg.sample, cfg.seed)
    options = BackendOptions(
        base_url=cfg.base_url,
        cache_dir=str(cfg.cache_dir or cache_root() / "llm"),
        concurrency=cfg.concurrency,
        max_retries=cfg.max_retries,
        timeout=cfg.timeout,
        device=cfg.device,
        batch_size=cfg.batch_size,
    )
    shared: dict[str, Any] = {}
    explainer = Explainer(cfg.explainer, make_llm(cfg.explainer, options, api_key, shared))
    scorer = Scorer(cfg.scorer_spec, make_llm(cfg.scorer_spec, options, api_key, shared))
    key = cfg.run_key(records.meta["key"])
    progress_path = Path(cfg.out) / PROGRESS_FILE
    done = _read_progress(progress_path, key)
    todo = [int(i) for i in chosen if int(i) not in done]
    if done:
        log(f"resuming: {len(chosen) - len(todo)} of {len(chosen)} latents already scored")
    bar = tqdm(total=len(chosen), initial=len(chosen) - len(todo), disable=not cfg.progress,
               desc="autointerp", unit="latent")  # fmt: skip
    try:
        for start in range(0, len(todo), cfg.chunk):
            chunk = todo[start : start + cfg.chunk]
            results = _score_chunk(chunk, records, cfg, explainer, scorer)
            _append_progress(progress_path, key, results)
            done.update({r["latent"]: r for r in results})
            bar.update(len(chunk))
    finally:
        bar.close()
    rows = [done[int(i)] for i in chosen]
    report = _report(cfg, records, rows, candidates, explainer, scorer, time.perf_counter() - t0)
    atomic_write_json(Path(cfg.out) / RESULT_FILE, report)
    return report


def _report(cfg, records, rows, candidates, explainer, scorer, seconds) -> dict[str, Any]:
    scores: dict[str, dict[str, Any]] = {}
    for method in cfg.scoring:
        kept = [r for r in rows if r["scores"][method] is not None]
        agg = aggregate(
            [r["scores"][method] for r in kept],
            [r["frequency"] for r in kept],
            cfg.n_bootstrap,
            cfg.n_bins,
            cfg.seed,
        )
        agg["no_score"] = len(rows) - len(kept)
        if method != "simulation":
            with_auc = [r for r in kept if r["details"][method].get("auroc") is not None]
            agg |= aggregate(
                [r["details"][method]["auroc"] for r in with_auc],
                [r["frequency"] for r in with_auc],
                cfg.n_bootstrap,
                cfg.n_bins,
                cfg.seed,
                prefix="auroc_",
            )
        scores[method] = agg
    d_sae = records.d_sae
    n_live = int(records.live.size)
    counts = {
        "d_sae": d_sae,
        "live": n_live,
        "dead": d_sae - n_live,
        "unscorable": n_live - int(len(candidates)),
        "sampled": len(rows),
        "scored": {m: scores[m]["n"] for m in cfg.scoring},
        "malformed_explanations": sum(bool(r["explanation_malformed"]) for r in rows),
        "malformed_predictions": {
            m: sum(r["details"][m]["malformed"] for r in rows) for m in cfg.scoring
        },
        "failed_requests": {
            "explanations": sum(r["explanation_error"] is not None for r in rows),
            **{m: sum(r["details"][m]["failed"] for r in rows) for m in cfg.scoring},
        },
    }
    usage = {}
    for role, agent in (("explainer", explainer), ("scorer", scorer)):
        backend = agent.backend
        usage[role] = {"backend": agent.spec, **(backend.usage.as_dict() if backend else {})}
    if explainer.backend is not None and explainer.backend is scorer.backend:
        usage["shared_backend"] = True
    headline = scores[cfg.scoring[0]]
    return {
        "records": str(records.path),
        "sae": records.meta["sae"],
        "store": records.meta["store"],
        "explainer": cfg.explainer,
        "scorer": cfg.scorer_spec,
        "sample": cfg.sample,
        "scoring": cfg.scoring[0],
        **{k: v for k, v in headline.items() if not k.startswith("auroc_")},
        "scores": scores,
        "counts": counts,
        "usage": usage,
        "seconds": round(seconds, 2),
        "config": cfg.model_dump(mode="json"),
        "latents": rows,
    }
