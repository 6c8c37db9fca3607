"""A study small enough for tests: MiniLM, two tiny stores, a TopK SAE and its chat finetune,
60 of the built-in prompts, one per-token probe, baseline autointerp and dataset debugging."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

TINY_STUDY = {
    "title": "tiny study",
    "model": "minilm",
    "layer": 3,
    "sweep": {
        "stores": {
            "docs": {"max_tokens": 3000, "context": 32},
            "chat": {"data": "CHAT", "chat": True, "max_tokens": 1500, "context": 32},
        },
        "d_sae": 64,
        "batch_size": 256,
        "eval_tokens": 512,
        "lm_windows": 0,
        "train": {"checkpoint_every": 2},
        "phases": [
            {"name": "pt", "store": "docs", "steps": 6,
             "grid": [{"architecture": "topk", "k": 8, "name": "topk"},
                      {"architecture": "relu", "l1_coefficient": 0.5, "name": "relu"}]},
            {"name": "chat", "store": "chat", "steps": 3,
             "grid": [{"architecture": "topk", "k": 8, "name": "topk-ft", "init_from": "topk"}]},
        ],
    },
    "dataset": {
        "sources": [{"name": "harmful", "kind": "builtin", "label": "harmful", "limit": 30},
                    {"name": "harmless", "kind": "builtin", "label": "harmless", "limit": 30}],
        "jailbreaks_on_harmless": True,
        "transforms": {"train": ["roleplay", "how_many_words"], "ood": ["refusal_suppression", "all_caps"]},
    },
    "probe": {
        "saes": ["topk", "topk-ft"],
        "ks": [1, 4],
        "selections": ["mean_diff"],
        "n_bootstrap": 20,
        "linear": {"cs": [1.0], "n_splits": 2},
        "per_token": {"probes": ["softmax"], "max_epochs": 2, "train_seeds": [0],
                      "weight_decays": [0.1], "n_splits": 2, "sae_k": 4},
    },
    "interp": {"max_tokens": 1500,
               "autointerp": {"explainer": "baseline", "n_latents": 3, "n_bootstrap": 20}},
    "debug": {"n_top": 3},
}  # fmt: skip


def tiny_study(tmp: Path, **changes) -> dict:
    """The tiny study with its chat data written under `tmp`; `changes` replace top-level keys."""
    chat = tmp / "chat.jsonl"
    if not chat.exists():
        lines = [f'{{"text": "How does {w} work? Explain it simply."}}\n'
                 for w in ("rain", "a lamp", "a bridge", "money", "sleep", "a clock")]  # fmt: skip
        chat.write_text("".join(lines * 30))
    study = copy.deepcopy(TINY_STUDY)
    study["sweep"]["stores"]["chat"]["data"] = str(chat)
    study.update(changes)
    return study


def write_study(tmp: Path, study: dict, name: str = "study.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path
