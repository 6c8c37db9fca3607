"""`saeprobe run CONFIG --dry-run`: what a study will do, how big it is and roughly what it
costs, without loading weights or touching the network.

Costs are forward/backward FLOPs from the sizes in the config and the model's shape: 2·N per
token for a forward pass of an N-parameter model (only up to the harvested layer), 6·d_in·d_sae
per token for one SAE training step (encoder and decoder, forward and backward). The model's
shape comes from a small built-in table of the models the configs name, or from a config.json
already on disk; a model found in neither says so rather than guessing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from saeprobe.study.config import StudyConfig
from saeprobe.study.stages import STAGES, needed_plans, needed_stores


@dataclass(frozen=True)
class ModelShape:
    n_params: float
    n_layers: int
    d_model: int


# Published shapes of the models the shipped configs name (parameters without embeddings are
# what a forward pass costs; the embedding lookup is free).
KNOWN_SHAPES = {
    "smollm2": ModelShape(1.06e8, 30, 576),
    "minilm": ModelShape(1.1e7, 6, 384),
    "google/gemma-2-9b-it": ModelShape(8.3e9, 42, 3584),
    "google/gemma-2-9b": ModelShape(8.3e9, 42, 3584),
    "google/gemma-2-2b-it": ModelShape(2.0e9, 26, 2304),
}

# A rough rate for turning FLOPs into hours; printed with the estimate so nobody mistakes it
# for a measurement.
ASSUMED_FLOPS = {"cpu": 2e11, "gpu": 2e14}


def model_shape(model: str) -> ModelShape | None:
    if model in KNOWN_SHAPES:
        return KNOWN_SHAPES[model]
    config = Path(model) / "config.json"
    if config.is_file():
        c = json.loads(config.read_text(encoding="utf-8"))
        d, layers = c.get("hidden_size"), c.get("num_hidden_layers")
        inter = c.get("intermediate_size", 4 * (d or 0))
        if d and layers:
            return ModelShape(layers * (4 * d * d + 3 * d * inter), layers, d)
    return None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _fmt(flops: float | None) -> str:
    if flops is None:
        return "unknown (model shape not known offline)"
    cpu, gpu = (_duration(flops / rate) for rate in ASSUMED_FLOPS.values())
    return f"{flops:.2e} FLOP (≈ {cpu} at an assumed 0.2 TFLOP/s CPU, {gpu} at 200 TFLOP/s GPU)"


def _forward(model: str, layer: int, tokens: float) -> float | None:
    shape = model_shape(model)
    if shape is None:
        return None
    return 2 * shape.n_params * min(1.0, (layer + 1) / shape.n_layers) * tokens


def plan_lines(cfg: StudyConfig) -> list[str]:
    """One block per stage: what it does, its sizes, its estimated cost."""
    sweep = cfg.sweep
    lines = [f"study: {cfg.title}", f"model {cfg.model}, layer {cfg.layer}, seed {cfg.seed}"]
    stores = needed_stores(cfg)
    harvest_flops: float | None = 0.0
    store_lines = []
    for name in stores:
        spec = sweep.stores[name]
        flops = _forward(spec.model, spec.layer, spec.max_tokens)
        harvest_flops = None if flops is None or harvest_flops is None else harvest_flops + flops
        store_lines.append(
            f"    store {name}: {spec.model} layer {spec.layer}, {spec.max_tokens:,} tokens of "
            f"{spec.data} (context {spec.context}, chat {spec.chat})"
        )
    for name, spec in sweep.rollouts.items():
        # Generation reads the whole model: about (prompt + answer) tokens per prompt.
        shape = model_shape(spec.model)
        n = (spec.limit or 1000) * (64 + spec.max_new_tokens)
        flops = None if shape is None else 2 * shape.n_params * n
        harvest_flops = None if flops is None or harvest_flops is None else harvest_flops + flops
        store_lines.append(
            f"    rollouts {name}: {spec.limit or 'all'} prompts of {spec.prompts}, "
            f"up to {spec.max_new_tokens} new tokens each"
        )
    plans = needed_plans(cfg)
    d_in = {name: (model_shape(sweep.stores[name].model) or ModelShape(0, 1, 0)).d_model
            for name in sweep.stores}  # fmt: skip
    phases = {p.name: p for p in sweep.phases}
    train_flops = 0.0
    for plan in plans:
        phase = phases[plan.phase]
        epoch = sweep.stores[phase.store].max_tokens // sweep.batch_size
        steps = phase.steps or sweep.train.get("steps") or max(1, epoch)
        train_flops += 6 * d_in[phase.store] * sweep.d_sae * steps * sweep.batch_size
    blocks = {
        "harvest": [*store_lines, f"    cost: {_fmt(harvest_flops)}"],
        "sweep": [
            f"    {len(plans)} SAEs of width {sweep.d_sae}, batch {sweep.batch_size}: "
            + ", ".join(f"{p.name} ({p.sae['architecture']})" for p in plans),
            f"    cost: {_fmt(train_flops)}",
        ],
        "dataset": [
            "    "
            + (
                "the built-in harmful-intent prompts"
                if cfg.dataset is None
                else f"{len(cfg.dataset.sources)} sources: "
                + ", ".join(s.name for s in cfg.dataset.sources)
            )
        ],  # fmt: skip
        "probe": [
            f"    SAEs {', '.join(cfg.probe.saes)}; poolings "
            + ", ".join(p.name for p in cfg.probe.poolings)
            + f"; ks {cfg.probe.ks}; per-token probes {', '.join(cfg.probe.per_token.probes)}"
        ],
        "latents": [f"    records for {', '.join(cfg.interp_runs)}"],
        "autointerp": [
            f"    explainer {(cfg.interp.autointerp if cfg.interp else {}).get('explainer')}"
        ],
        "debug": [f"    SAE {cfg.debug_run}"],
        "report": ["    report.html and results.json"],
    }
    active = [s for s in STAGES if s.enabled(cfg)]
    for i, stage in enumerate(active, start=1):
        lines.append(f"[{i}/{len(active)}] {stage.name}")
        lines += blocks[stage.name]
    return lines
