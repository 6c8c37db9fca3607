"""`saeprobe scan-layers`: choose the probing layer from the training split alone.

For each layer and pooling of a probe config, the dense probe's grouped cross-validated AUROC on
the training split (folds grouped by base prompt, C chosen per layer as the probe suite does).
Validation and OOD prompts are never read: a layer picked by its OOD score would make the OOD
comparison optimistic. One forward pass per batch serves every layer.

Harmful-vs-harmless is easy in distribution, so several layers may score near 1; the CV
log-loss of the chosen C separates them better, and the best layer is the one with the lowest
log-loss of the first pooling (ties go to the shallower, cheaper layer).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import log_loss

from saeprobe.data.prompts.build import build_dataset, load_dataset_dir
from saeprobe.data.prompts.config import resolve_dataset_config
from saeprobe.errors import ConfigError, DataError
from saeprobe.features.extract import extract_residuals
from saeprobe.figures import new_figure, save_figure
from saeprobe.io_utils import atomic_write_json, atomic_write_text
from saeprobe.lm.models import load_model
from saeprobe.lm.precision import resolve_autocast
from saeprobe.probes.benchmark import ProbeConfig
from saeprobe.probes.cv import fit_quietly, group_folds, new_logistic, select_c, standardise
from saeprobe.train.trainer import resolve_device


def _cv_log_loss(x: np.ndarray, y: np.ndarray, groups: list[str], c: float) -> float:
    """Held-out log-loss of the logistic probe at C over the same grouped folds."""
    losses, weights = [], []
    for tr, te in group_folds(y, groups):
        if np.unique(y[tr]).size < 2:
            continue
        x_tr, x_te = standardise(x[tr], x[te])
        model = fit_quietly(new_logistic(c), x_tr, y[tr])
        losses.append(log_loss(y[te], model.predict_proba(x_te)[:, 1], labels=[0, 1]))
        weights.append(len(te))
    return float(np.average(losses, weights=weights))


def score_layer(x: np.ndarray, y: np.ndarray, groups: list[str]) -> dict[str, float]:
    # The scan's documented numbers pick C by AUROC (ties to the smallest C), then report the
    # log-loss there; kept so the table in docs/probing.md stays reproducible.
    cv = select_c(x, y, groups, criterion="auroc")
    return {
        "cv_auroc": max(cv.mean_auroc),
        "cv_log_loss": _cv_log_loss(x, y, groups, cv.c),
        "c": cv.c,
    }


def scan_layers(
    cfg: ProbeConfig, layers: list[int], out: str | Path, progress: bool = True, log=print
) -> dict[str, Any]:
    if not layers:
        raise ConfigError("no layers to scan; pass --layers, e.g. --layers 6,9,12,15,18,21")
    t0 = time.perf_counter()
    out = Path(out)
    build_dataset(resolve_dataset_config(cfg.dataset), out / "dataset")
    train = [r for r in load_dataset_dir(out / "dataset") if r.split == "train"]
    if not train:
        raise DataError("the dataset has no train split to scan layers on; check its config")
    device = resolve_device(cfg.device)
    lm = load_model(cfg.model, device=device)
    pooled = extract_residuals(
        lm, sorted(set(layers)), [r.text for r in train], cfg.poolings, cfg.context,
        cfg.batch_size, progress, resolve_autocast(cfg.autocast, device),
    )  # fmt: skip
    y = np.array([r.label for r in train])
    groups = [r.base_id for r in train]
    records = []
    for layer, by_pool in pooled.items():
        for pool, x in by_pool.items():
            records.append({"layer": layer, "pooling": pool, **score_layer(x, y, groups)})
            log(f"layer {layer:>3} {pool:>12}: CV AUROC {records[-1]['cv_auroc']:.4f}, "
                f"log-loss {records[-1]['cv_log_loss']:.4f}")  # fmt: skip
    first = cfg.poolings[0].name
    ranked = sorted((r for r in records if r["pooling"] == first), key=_rank)
    report = {
        "model": cfg.model,
        "n_layers": lm.n_layers,
        "n_train": len(train),
        "best_layer": ranked[0]["layer"],
        "ranked_by": f"CV log-loss of the {first} pooling, then the shallower layer",
        "records": records,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    atomic_write_json(out / "layer_scan.json", report)
    atomic_write_text(out / "layer_scan.md", _table(records))
    _plot(records, out / "layer_scan.png", f"{cfg.model}: dense probe, train-split CV")
    return report


def _rank(record: dict[str, Any]) -> tuple[float, int]:
    return (round(record["cv_log_loss"], 4), record["layer"])


def _table(records: list[dict[str, Any]]) -> str:
    lines = ["| layer | pooling | CV AUROC | CV log-loss | C |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['layer']} | {r['pooling']} | {r['cv_auroc']:.4f} | {r['cv_log_loss']:.4f} | "
        f"{r['c']:g} |"
        for r in records
    ]
    return "\n".join(lines) + "\n"


def _plot(records: list[dict[str, Any]], path: Path, title: str) -> Path:
    fig = new_figure((10.0, 4.0))
    for i, metric in enumerate(("cv_auroc", "cv_log_loss")):
        ax = fig.add_subplot(1, 2, i + 1)
        for pool in dict.fromkeys(r["pooling"] for r in records):
            rows = sorted((r for r in records if r["pooling"] == pool), key=lambda r: r["layer"])
            ax.plot([r["layer"] for r in rows], [r[metric] for r in rows], marker="o", label=pool)
        ax.set_xlabel("layer")
        ax.set_ylabel({"cv_auroc": "CV AUROC", "cv_log_loss": "CV log-loss"}[metric])
        ax.grid(True, alpha=0.4)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path, "png")
