"""`saeprobe debug-dataset`: find the SAE latents that separate a dataset's classes, show what
they fire on, and flag the ones that fire on surface cues (seed_spec §5).

    dataset (built from its config) -> pooled SAE latents of one split (the probing stage's
    features, cached) -> per latent: class mean difference and single-latent AUROC -> the top
    latents of both rankings, merged -> per latent: its most-activating prompts with per-token
    activations, its class balance, a surface pattern shared by its top prompts -> findings

Ranking: latents are ordered by |mean difference| (positive minus negative class mean of the
pooled activation, the study's statistic) and by |AUROC - 0.5| (the best single-latent
separators); the two orders are merged alternately, each latent kept once, and the first
`n_top` become the findings. A strong cue is often read by many near-identical latents (ten
"ends in a full stop" latents on un-normalised Alpaca), which would fill the list with one
finding: after `max_per_pattern` (3) latents flagged with the same pattern, further ones are
listed under the last of them (`similar`) instead of taking a rank, so the next cue shows
(`max_per_pattern: 0` keeps every latent in rank order). A latent is flagged with a pattern
when its `pattern_examples` most-activating prompts share it far more often than the split
does (the rule is in `patterns.py`).

Writes OUT/dataset/ (the built dataset), OUT/findings.json (a list of records
`{rank, latent, mean_diff, auroc, pattern, rate_pos, rate_neg, ...}`, where rate_pos / rate_neg
are the flagged pattern's rates among the split's positive / negative prompts, null when no
pattern is flagged), OUT/findings.md, OUT/findings.html and OUT/summary.json (config, class
balance, and every pattern's per-class rates over the split).
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from saeprobe.cache import cache_root
from saeprobe.data.prompts.build import build_dataset, load_dataset_dir
from saeprobe.data.prompts.config import resolve_dataset_config
from saeprobe.errors import ConfigError, DataError
from saeprobe.features.cache import feature_key, load_features, save_features
from saeprobe.features.extract import extract_features
from saeprobe.features.pooling import Pooling
from saeprobe.interp.patterns import flag_pattern, rate, split_patterns
from saeprobe.interp.token_acts import user_token_latents
from saeprobe.io_utils import atomic_write_json, atomic_write_text
from saeprobe.lm.models import DEFAULT_MODEL, load_model
from saeprobe.lm.precision import resolve_autocast
from saeprobe.probes.benchmark import DEFAULT_PROBE_LAYER
from saeprobe.probes.metrics import auroc_columns
from saeprobe.probes.selection import latent_stats
from saeprobe.sae.config import build_config
from saeprobe.sae.io import load_sae
from saeprobe.sweep.sources import SaeSources, resolve_saes
from saeprobe.train.trainer import resolve_device
from saeprobe.yaml_config import load_yaml_config

# Latents examined per finding asked for, at most (collapsed latents do not take a rank).
CANDIDATES_PER_FINDING = 10


class DebugConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Path | dict[str, Any] | None = Field(
        None, description="dataset config: a YAML path or an inline mapping; none = offline default"
    )
    model: str = DEFAULT_MODEL
    layer: int = Field(DEFAULT_PROBE_LAYER, ge=0)
    context: int = Field(512, ge=8)
    batch_size: int = Field(16, gt=0)
    pooling: Pooling = Field(default_factory=Pooling)
    saes: SaeSources = Field(description="where the SAE comes from (a sweep run or a directory)")
    sae: str | None = Field(None, description="which of those SAEs [the only one]")
    split: Literal["train", "val", "ood"] = "train"
    n_top: int = Field(10, ge=1, description="latents reported")
    n_examples: int = Field(6, ge=1, description="prompts shown per latent")
    pattern_examples: int = Field(20, ge=2, description="top prompts a pattern is judged on")
    max_per_pattern: int = Field(
        3,
        ge=0,
        description="findings per flagged pattern; further latents with that pattern are "
        "listed under the last one (similar) instead of taking a rank; 0 keeps them all",
    )
    device: str = "auto"
    autocast: bool | None = None


def load_debug_config(path: str | Path) -> DebugConfig:
    return build_config(DebugConfig, load_yaml_config(path), what=f"debug config {path}")


def _pick_sae(cfg: DebugConfig, progress: bool) -> tuple[str, Path]:
    dirs, _ = resolve_saes(cfg.saes, progress)
    if cfg.sae is None:
        if len(dirs) > 1:
            raise ConfigError(f"several SAEs configured ({', '.join(dirs)}); choose one with sae:")
        return next(iter(dirs.items()))
    if cfg.sae not in dirs:
        raise ConfigError(f"sae: {cfg.sae!r} is not among the configured SAEs {sorted(dirs)}")
    return cfg.sae, dirs[cfg.sae]


def merge_rankings(*orders: np.ndarray, n: int) -> list[int]:
    """Alternate between the orders, keeping each latent once, until n are chosen."""
    out: list[int] = []
    seen: set[int] = set()
    depth = 0
    while len(out) < n and any(depth < len(o) for o in orders):
        for o in orders:
            if depth < len(o) and int(o[depth]) not in seen and len(out) < n:
                seen.add(int(o[depth]))
                out.append(int(o[depth]))
        depth += 1
    return out


def rank_latents(z: np.ndarray, y: np.ndarray, n: int):
    """(chosen latents, mean difference, AUROC) over the firing latents of z [rows, d_sae]."""
    stats = latent_stats(z, y)
    diff = stats.mean_pos - stats.mean_neg
    au = auroc_columns(z, y, split="debug")
    firing = np.flatnonzero(stats.fires)
    if not firing.size:
        raise DataError("no SAE latent fires on any prompt of the split; check the SAE and layer")
    by_diff = firing[np.argsort(-np.abs(diff[firing]), kind="stable")]
    by_auroc = firing[np.argsort(-np.abs(au[firing] - 0.5), kind="stable")]
    return merge_rankings(by_diff, by_auroc, n=n), diff, au


def run_debug_dataset(cfg: DebugConfig, out: str | Path, progress: bool = True, log=print):
    t0 = time.perf_counter()
    out = Path(out)
    build_dataset(resolve_dataset_config(cfg.dataset), out / "dataset")
    rows = [r for r in load_dataset_dir(out / "dataset") if r.split == cfg.split]
    if not rows:
        raise DataError(f"the dataset has no {cfg.split} rows; choose another split:")
    texts = [r.text for r in rows]
    y = np.array([r.label for r in rows])
    if y.min() == y.max():
        raise DataError(f"the {cfg.split} split has one class only; debugging needs both classes")
    name, sae_dir = _pick_sae(cfg, progress)
    lm = load_model(cfg.model, device=resolve_device(cfg.device))
    use_autocast = resolve_autocast(cfg.autocast, next(lm.model.parameters()).device)
    key = feature_key(lm, cfg.layer, cfg.context, [cfg.pooling], texts, {name: sae_dir},
                      use_autocast)  # fmt: skip
    path = cache_root() / "features" / f"{key}.safetensors"
    sae = load_sae(sae_dir)
    if path.exists():
        feats = load_features(path)
    else:
        feats = extract_features(
            lm, cfg.layer, texts, {name: sae}, [cfg.pooling], cfg.context, cfg.batch_size,
            progress, use_autocast,
        )  # fmt: skip
        save_features(path, feats)
    z = feats.latents[name][cfg.pooling.name]
    order, diff, au = rank_latents(z, y, cfg.n_top * CANDIDATES_PER_FINDING)
    n_tokens = [int(n) for n in feats.n_user_tokens]
    patterns = split_patterns(texts, n_tokens)
    by_name = {p.name: p for p in patterns}
    pos_texts = [t for t, label in zip(texts, y, strict=True) if label == 1]
    neg_texts = [t for t, label in zip(texts, y, strict=True) if label == 0]

    findings: list[dict[str, Any]] = []
    per_pattern: dict[str, list[dict[str, Any]]] = {}
    n_collapsed = 0
    for start in range(0, len(order), cfg.n_top):
        if len(findings) >= cfg.n_top:
            break
        chunk = order[start : start + cfg.n_top]
        tops = {i: _top_rows(z[:, i], cfg.pattern_examples) for i in chunk}
        shown = sorted({int(r) for i in chunk for r in tops[i][: cfg.n_examples]})
        acts_of = user_token_latents(
            lm, cfg.layer, [texts[r] for r in shown], sae, chunk, cfg.context, cfg.batch_size
        )
        per_token = dict(zip(shown, acts_of, strict=True))
        for col, i in enumerate(chunk):
            top = tops[i]
            examples = [
                {
                    "row": int(r),
                    "label": int(y[r]),
                    "source": rows[r].source,
                    "transform": rows[r].transform,
                    "value": float(z[r, i]),
                    "text": texts[r],
                    "tokens": per_token[int(r)][0],
                    "acts": [round(float(a), 4) for a in per_token[int(r)][1][:, col]],
                }
                for r in top[: cfg.n_examples]
            ]
            at_end = np.mean(
                [bool(e["acts"]) and int(np.argmax(e["acts"])) == len(e["acts"]) - 1
                 for e in examples] or [0.0]
            )  # fmt: skip
            flag = flag_pattern([texts[r] for r in top], texts, patterns, float(at_end))
            same = per_pattern.get(flag.name, []) if flag else []
            if flag and cfg.max_per_pattern and len(same) >= cfg.max_per_pattern:
                same[-1]["similar"].append(i)  # listed under the last finding of its pattern
                n_collapsed += 1
                continue
            pattern = by_name[flag.name] if flag else None
            fires = z[:, i] > 0
            finding = {
                "rank": len(findings) + 1,
                "latent": i,
                "mean_diff": float(diff[i]),
                "auroc": float(au[i]),
                "pattern": flag.name if flag else None,
                "rate_pos": rate(pattern, pos_texts) if pattern else None,
                "rate_neg": rate(pattern, neg_texts) if pattern else None,
                "top_rate": flag.top_rate if flag else None,
                "split_rate": flag.split_rate if flag else None,
                "n_active_pos": int((fires & (y == 1)).sum()),
                "n_active_neg": int((fires & (y == 0)).sum()),
                "top_pos": int((y[top] == 1).sum()),
                "top_neg": int((y[top] == 0).sum()),
                "peak_token": _peak_token(examples),
                "peaks_at_end": float(at_end),
                "similar": [],
                "examples": examples,
            }
            findings.append(finding)
            if flag:
                per_pattern.setdefault(flag.name, []).append(finding)
            if len(findings) >= cfg.n_top:
                break
    summary = {
        "sae": {"name": name, "dir": str(sae_dir)},
        "model": cfg.model,
        "layer": cfg.layer,
        "pooling": cfg.pooling.name,
        "split": cfg.split,
        "rows": len(rows),
        "positive": int(y.sum()),
        "negative": int((y == 0).sum()),
        "pattern_rates": {
            p.name: {"rate_pos": rate(p, pos_texts), "rate_neg": rate(p, neg_texts)}
            for p in patterns
        },
        "collapsed": n_collapsed,
        "seconds": round(time.perf_counter() - t0, 2),
        "config": json.loads(cfg.model_dump_json()),
    }
    atomic_write_json(out / "findings.json", findings)
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "findings.md", findings_markdown(findings, summary))
    atomic_write_text(out / "findings.html", findings_html(findings, summary))
    flagged = [f for f in findings if f["pattern"]]
    log(
        f"{len(findings)} latents, {len(flagged)} flagged "
        f"({', '.join(sorted({f['pattern'] for f in flagged})) or 'none'}) -> {out}/findings.md"
    )
    return findings, summary


def _top_rows(column: np.ndarray, n: int) -> list[int]:
    order = np.argsort(-column, kind="stable")
    return [int(r) for r in order[:n] if column[r] > 0]


def _peak_token(examples: list[dict[str, Any]]) -> str | None:
    peaks = [e["tokens"][int(np.argmax(e["acts"]))] for e in examples if e["acts"]]
    if not peaks:
        return None
    values, counts = np.unique(peaks, return_counts=True)
    return str(values[np.argmax(counts)])


# --- reports ---------------------------------------------------------------------------------


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def findings_markdown(findings: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = [
        f"# Dataset debugging: {summary['split']} split, SAE {summary['sae']['name']}",
        "",
        f"{summary['rows']} prompts ({summary['positive']} harmful, {summary['negative']} "
        f"harmless); {summary['model']} layer {summary['layer']}, {summary['pooling']}-pooled.",
        "",
        "| rank | latent | mean diff | AUROC | pattern | rate harmful | rate harmless | "
        "active harmful / harmless | peak token | same pattern, not ranked |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in findings:
        lines.append(
            f"| {f['rank']} | {f['latent']} | {f['mean_diff']:+.4g} | {f['auroc']:.3f} | "
            f"{f['pattern'] or '–'} | {_rate(f['rate_pos'])} | {_rate(f['rate_neg'])} | "
            f"{f['n_active_pos']} / {f['n_active_neg']} | `{(f['peak_token'] or '').strip()}` |"
            + f" {', '.join(map(str, f['similar']))} |"
        )
    lines += ["", "## Surface patterns over the split", "", "| pattern | harmful | harmless |"]
    lines.append("|---|---|---|")
    for name, r in summary["pattern_rates"].items():
        lines.append(f"| {name} | {_rate(r['rate_pos'])} | {_rate(r['rate_neg'])} |")
    for f in findings:
        lines += ["", f"## {f['rank']}. latent {f['latent']}" + (
            f" — {f['pattern']}" if f["pattern"] else ""), ""]  # fmt: skip
        for e in f["examples"]:
            marked = "".join(
                f"**{t}**" if a > 0 and a >= 0.3 * e["value"] else t
                for t, a in zip(e["tokens"], e["acts"], strict=True)
            )
            label = "harmful" if e["label"] else "harmless"
            lines.append(f"- ({label}, {e['value']:.3g}) {marked.strip()}")
    return "\n".join(lines) + "\n"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3}.tok{white-space:pre-wrap}.ex{margin:4px 0;font-family:monospace}
.flag{color:#b00;font-weight:bold}.pos{color:#900}.neg{color:#060}
"""


def _tokens_html(tokens: list[str], acts: list[float], value: float) -> str:
    top = max(value, max(acts, default=0.0), 1e-12)
    spans = []
    for t, a in zip(tokens, acts, strict=True):
        alpha = min(1.0, max(0.0, a / top))
        spans.append(
            f'<span class="tok" style="background:rgba(255,120,0,{alpha:.2f})" '
            f'title="{a:.4g}">{html.escape(t)}</span>'
        )
    return "".join(spans)


def findings_html(findings: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    e = html.escape
    head = (
        f"<h1>Dataset debugging: {e(summary['split'])} split, SAE {e(summary['sae']['name'])}</h1>"
        f"<p>{summary['rows']} prompts ({summary['positive']} harmful, {summary['negative']} "
        f"harmless); {e(summary['model'])} layer {summary['layer']}, "
        f"{e(summary['pooling'])}-pooled.</p>"
    )
    rows = "".join(
        f"<tr><td>{f['rank']}</td><td><a href='#l{f['latent']}'>{f['latent']}</a></td>"
        f"<td>{f['mean_diff']:+.4g}</td><td>{f['auroc']:.3f}</td>"
        f"<td class='flag'>{e(f['pattern'] or '')}</td><td>{_rate(f['rate_pos'])}</td>"
        f"<td>{_rate(f['rate_neg'])}</td><td>{f['n_active_pos']} / {f['n_active_neg']}</td>"
        f"<td>{', '.join(map(str, f['similar']))}</td></tr>"
        for f in findings
    )
    table = (
        "<table><tr><th>rank</th><th>latent</th><th>mean diff</th><th>AUROC</th><th>pattern</th>"
        "<th>rate harmful</th><th>rate harmless</th><th>active harmful / harmless</th>"
        "<th>same pattern, not ranked</th></tr>"
        f"{rows}</table>"
    )
    rates = "".join(
        f"<tr><td>{e(n)}</td><td>{_rate(r['rate_pos'])}</td><td>{_rate(r['rate_neg'])}</td></tr>"
        for n, r in summary["pattern_rates"].items()
    )
    sections = []
    for f in findings:
        exs = "".join(
            f"<div class='ex'><span class='{'pos' if x['label'] else 'neg'}'>"
            f"{'harmful' if x['label'] else 'harmless'}</span> ({x['value']:.3g}) "
            f"{_tokens_html(x['tokens'], x['acts'], x['value'])}</div>"
            for x in f["examples"]
        )
        flag = f" — <span class='flag'>{e(f['pattern'])}</span>" if f["pattern"] else ""
        sections.append(
            f"<h2 id='l{f['latent']}'>{f['rank']}. latent {f['latent']}{flag}</h2>{exs}"
        )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>saeprobe dataset debugging"
        f"</title><style>{_STYLE}</style></head><body>{head}{table}<h2>Surface patterns</h2>"
        f"<table><tr><th>pattern</th><th>harmful</th><th>harmless</th></tr>{rates}</table>"
        f"{''.join(sections)}</body></html>\n"
    )
