"""A small study directory in the real stages' schemas, for the report tests.

Three SAEs (a ReLU, a TopK, and a chat finetune of the TopK), one pooling plus a second, a
per-token probe, autointerp with dashboards, and dataset debugging. `parts` leaves stages out
to test the report's gaps. The OOD deltas of the SAEs' best probes are given per SAE, so a
test can make the headline fall either way.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

ALL_PARTS = ("sweep", "dataset", "probe", "autointerp", "debug")
SAES = ("relu-a", "topk-a", "ft")
SERIES = {"relu-a": "relu", "topk-a": "topk", "ft": "topk"}
DENSE_OOD = 0.95
# SAE - dense on OOD, with the half-width of the paired interval.
DEFAULT_DELTAS = {"relu-a": (-0.12, 0.02), "topk-a": (-0.05, 0.01), "ft": (-0.08, 0.02)}


@cache
def tiny_png(title: str = "figure") -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1.5), dpi=40)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], label="line")
    ax.set_title(title)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _write(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tiny_png(path.stem))


def _sweep_row(name: str, l0: float, init_from: str | None = None) -> dict[str, Any]:
    return {
        "name": name, "phase": "chat-finetune" if init_from else "architectures",
        "series": SERIES[name], "architecture": SERIES[name], "d_sae": 64, "k": 8 if
        SERIES[name] == "topk" else None, "init_from": init_from, "reinit_fraction": 0.0,
        "steps": 20, "store": "docs", "eval_store": "docs", "l0": l0, "fvu": 0.3,
        "delta_lm_loss": 0.5, "kl_divergence": 0.6, "ce_loss_recovered": 0.9,
        "dead_fraction": 0.05, "n_high_frequency": 3, "auxk": SERIES[name] == "topk",
        "sae_dir": f"sweep/saes/{name}",
    }  # fmt: skip


def write_sweep(out: Path) -> None:
    rows = [_sweep_row("relu-a", 40.5), _sweep_row("topk-a", 8.0),
            _sweep_row("ft", 8.0, init_from="topk-a")]  # fmt: skip
    _write(out / "sweep" / "sweep.json", {"rows": rows, "config": {"seed": 0}})
    _png(out / "sweep" / "pareto-architectures.png")
    _png(out / "sweep" / "frequencies-architectures.png")


def write_dataset(out: Path) -> None:
    splits = {
        "train": {"rows": 80, "harmful": 40, "harmless": 40, "base_prompts": 40},
        "val": {"rows": 20, "harmful": 10, "harmless": 10, "base_prompts": 10},
        "ood": {"rows": 40, "harmful": 20, "harmless": 20, "base_prompts": 20},
    }
    _write(out / "dataset" / "summary.json", {"n_rows": 140, "splits": splits, "groups": []})


def _record(probe: str, split: str, auroc: float, sae=None, k=None, selection=None, **extra):
    return {
        "probe": probe, "sae": sae, "k": k, "selection": selection, "seed": 0, "split": split,
        "auroc": auroc, "auroc_ci_low": auroc - 0.01, "auroc_ci_high": min(1.0, auroc + 0.01),
        "tpr_at_1pct_fpr": auroc - 0.2, "tpr_at_1pct_fpr_val_threshold": auroc - 0.1,
        "fpr_at_val_threshold": 0.05, "n": 40, "n_pos": 20, "pooling": "max", **extra,
    }  # fmt: skip


def probe_results(
    deltas: Mapping[str, tuple[float, float]] = DEFAULT_DELTAS,
    dense_ood: float = DENSE_OOD,
    pooling: str = "max",
    saes: Iterable[str] | None = None,
) -> dict[str, Any]:
    """A `saeprobe probe` results.json; `deltas` maps SAE -> (OOD delta, interval half-width)."""
    saes = list(saes if saes is not None else deltas)
    splits = {"train": 1.0, "val": 0.98, "ood": dense_ood}
    records, comparisons, recon, breakdown = [], [], [], []
    for split, auroc in splits.items():
        records.append(_record("dense", split, auroc))
        records.append(_record("diff_of_means", split, auroc - 0.1))
        records.append(_record("attention", split, auroc - 0.02, n_train_seeds=3,
                               train_seed_auroc_min=auroc - 0.05, train_seed_auroc_max=auroc,
                               train_seed_auroc_std=0.01, pooling="tokens"))  # fmt: skip
    for sae in saes:
        delta, half = deltas[sae]
        for split, dense in splits.items():
            d = delta if split == "ood" else -0.001
            label = f"k_sparse/{sae}/l1/k5"
            records.append(_record("k_sparse", split, dense + d, sae=sae, k=5, selection="l1"))
            records.append(_record("ema", split, dense - 0.2, sae=sae, k=20, selection="l1",
                                   n_train_seeds=3, train_seed_auroc_min=0.5,
                                   train_seed_auroc_max=0.8, train_seed_auroc_std=0.1))  # fmt: skip
            base = {"probe_b": "dense", "sae": sae, "seed": 0, "split": split,
                    "auroc_b": dense, "pooling": pooling}  # fmt: skip
            comparisons.append(base | {
                "kind": "best_sae_vs_dense", "probe_a": label, "auroc_a": dense + d,
                "delta": d, "ci_low": d - half, "ci_high": d + half,
                "chosen_by": "best SAE probe by val AUROC"})  # fmt: skip
            comparisons.append(base | {
                "kind": "vs_dense", "probe_a": f"ema/{sae}/l1/k20", "auroc_a": dense - 0.2,
                "delta": -0.2, "ci_low": -0.25, "ci_high": -0.15, "chosen_by": None})  # fmt: skip
            recon.append({"sae": sae, "seed": 0, "split": split, "dense_auroc": dense,
                          "reconstruction_auroc": dense - 0.01, "delta": 0.01,
                          "delta_ci_low": 0.0, "delta_ci_high": 0.02})  # fmt: skip
        for group_type, group, ref in (
            ("source", "advbench", "group"),
            ("transform", "evil_confidant", "split_negatives"),
        ):
            for probe, sae_, k, sel in (("dense", None, None, None), ("k_sparse", sae, 5, "l1")):
                breakdown.append({"probe": probe, "sae": sae_, "k": k, "selection": sel,
                                  "seed": 0, "group_type": group_type, "group": group,
                                  "auroc": 0.9, "n": 30, "n_pos": 10, "reference": ref,
                                  "pooling": pooling})  # fmt: skip
    config = {
        "ks": [1, 5], "selections": ["l1"], "seeds": [0], "n_bootstrap": 100, "d_model": 16,
        "splits": {"train": {"n": 80, "n_pos": 40}, "val": {"n": 20, "n_pos": 10},
                   "ood": {"n": 40, "n_pos": 20}},
        "pooling": pooling, "layer": 3, "model": "tiny", "scored_probes": ["attention", "ema"],
    }  # fmt: skip
    return {"config": config, "timings": {"total": 1.0}, "results": records,
            "comparisons": comparisons, "reconstruction_delta": recon, "ood_breakdown": breakdown,
            "probe_info": [], "dense_c_choice": [], "sae_seed_results": []}  # fmt: skip


def write_probe(out: Path, deltas: Mapping[str, tuple[float, float]] = DEFAULT_DELTAS) -> None:
    probe = out / "probe"
    _write(probe / "results.json", probe_results(deltas))
    _png(probe / "auroc_vs_k.png")
    _png(probe / "reconstruction_delta.png")
    _write(probe / "pooling-mean" / "results.json", probe_results(deltas, pooling="mean"))
    _png(probe / "pooling-mean" / "auroc_vs_k.png")


def _scores(mean: float) -> dict[str, Any]:
    return {
        "n": 20, "uniform_mean": mean, "uniform_mean_ci_low": mean - 0.05,
        "uniform_mean_ci_high": mean + 0.05, "frequency_weighted_mean": mean - 0.02,
        "frequency_weighted_mean_ci_low": mean - 0.07, "frequency_weighted_mean_ci_high": mean,
        "per_quantile": [],
    }  # fmt: skip


def write_autointerp(out: Path) -> None:
    ai = out / "autointerp"
    rows = []
    for i, name in enumerate(SAES):
        rows.append({"name": name, "series": SERIES[name], "architecture": SERIES[name],
                     "l0": 8.0 + i, "fvu": 0.3, "store": "docs", "counts": {},
                     "simulation": _scores(0.5 + 0.1 * i)})  # fmt: skip
        run = ai / name
        _write(run / "autointerp.json", {"n": 20})
        (run / "dashboard.html").write_text(
            f"<!DOCTYPE html><html><head><title>{name} dashboard</title></head>"
            f"<body><h1>{name}</h1></body></html>",
            encoding="utf-8",
        )
    _write(ai / "autointerp_sweep.json", {"explainer": "baseline", "scorer": "baseline",
                                          "rows": rows, "figures": {}, "seconds": 1.0})  # fmt: skip
    _png(ai / "score_vs_l0_simulation.png")
    _png(ai / "score_vs_frequency_simulation.png")


def write_debug(out: Path) -> None:
    debug = out / "debug"
    findings = [
        {"rank": 1, "latent": 7, "mean_diff": -0.1, "auroc": 0.08, "pattern": "ending_period",
         "rate_pos": 0.0, "rate_neg": 0.7, "peak_token": ".",
         "examples": [{"text": "Name five birds <b>not bold</b>.", "label": 0}]},
        {"rank": 2, "latent": 3, "mean_diff": 0.04, "auroc": 0.8, "pattern": None,
         "rate_pos": None, "rate_neg": None, "peak_token": "Write", "examples": []},
    ]  # fmt: skip
    _write(debug / "findings.json", findings)
    _write(debug / "summary.json", {"sae": {"name": "topk-a"}, "split": "train", "rows": 80,
                                    "positive": 40, "negative": 40, "collapsed": 1,
                                    "pattern_rates": {"ending_period": {"rate_pos": 0.0,
                                                                        "rate_neg": 0.7}}})  # fmt: skip
    (debug / "findings.html").write_text("<html><body>findings</body></html>", encoding="utf-8")


WRITERS = {"sweep": write_sweep, "dataset": write_dataset, "probe": write_probe,
           "autointerp": write_autointerp, "debug": write_debug}  # fmt: skip


def make_study(out: Path, parts: Iterable[str] = ALL_PARTS, **probe_kw) -> Path:
    """Write a study directory under `out` holding `parts` (stage outputs) and return it."""
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "study_config.json", {
        "title": "Synthetic study", "model": "tiny", "layer": 3, "seed": 0, "device": "cpu",
        "sweep": {"seed": 0, "d_sae": 64, "stores": {"docs": {"data": "python-docs",
                                                              "max_tokens": 2000}}},
        "dataset": {"seed": 0}, "probe": {"saes": list(SAES)}, "interp": None, "debug": None,
    })  # fmt: skip
    for part in parts:
        if part == "probe":
            write_probe(out, **probe_kw)
        else:
            WRITERS[part](out)
        _write(out / "stages" / f"{part}.json",
               {"key": "k", "seconds": 1.5, "summary": {"wrote": str(out / part)}})  # fmt: skip
    return out
