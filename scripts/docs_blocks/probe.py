"""Block kinds over `saeprobe probe` outputs: `results.json` per pooling (the first pooling in
the run directory, each further one in `pooling-<name>/`; schema in docs/probing.md).

Every kind takes `pooling=` (default: the run directory's own pooling) and `seed=` (default:
the first probe seed of the run).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import Block, BlockError, kind, read_json
from .fmt import (
    c_value,
    interval,
    num,
    signed_interval,
    span,
    table,
)

SPLITS = ("train", "val", "ood")


def label(record: Mapping[str, Any]) -> str:
    """The probe's label, as `saeprobe.probes.comparisons.probe_label` writes it."""
    parts = [str(record["probe"])]
    for key in ("sae", "selection"):
        if record.get(key) is not None:
            parts.append(str(record[key]))
    if record.get("k") is not None:
        parts.append(f"k{record['k']}")
    return "/".join(parts)


class Results:
    """One pooling's results.json, indexed by (label, seed, split)."""

    def __init__(self, data: dict[str, Any], path: Path, seed: str | None):
        self.data = data
        self.path = path
        self.config = data.get("config", {})
        self.pooling = self.config.get("pooling")
        seeds = self.config.get("seeds") or [0]
        self.seed = int(seed) if seed is not None else int(seeds[0])
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.labels: list[str] = []
        for rec in data.get("results", []):
            if rec.get("seed") != self.seed:
                continue
            lab = label(rec)
            if lab not in self.labels:
                self.labels.append(lab)
            self.records[(lab, rec["split"])] = rec
        self.saes = list(self.config.get("saes", {}))

    def get(self, lab: str, split: str) -> dict[str, Any] | None:
        return self.records.get((lab, split))

    def auroc(self, lab: str, split: str) -> float | None:
        rec = self.get(lab, split)
        return None if rec is None else rec["auroc"]

    def auroc_interval(self, lab: str, split: str) -> str:
        rec = self.get(lab, split)
        if rec is None:
            return interval(None, None, None)
        return interval(rec["auroc"], rec.get("auroc_ci_low"), rec.get("auroc_ci_high"))

    def comparison(
        self, kind_: str, probe_a: str | None, split: str, sae: str | None = None
    ) -> dict[str, Any] | None:
        for comp in self.data.get("comparisons", []):
            if (
                comp.get("kind") == kind_
                and comp.get("seed") == self.seed
                and comp.get("split") == split
                and (probe_a is None or comp.get("probe_a") == probe_a)
                and comp.get("sae") == sae
            ):
                return comp
        return None


def poolings(run: Path) -> list[str]:
    """The run's poolings, in the order the probe run wrote them."""
    meta = run / "probe_run.json"
    if meta.is_file():
        names = list(read_json(meta).get("poolings", {}))
        if names:
            return names
    first = read_json(run / "results.json").get("config", {}).get("pooling")
    rest = sorted(p.name.removeprefix("pooling-") for p in run.glob("pooling-*") if p.is_dir())
    return [first, *rest]


def load(run: Path, params: Mapping[str, str], pooling: str | None = None) -> Results:
    pooling = pooling if pooling is not None else params.get("pooling")
    path = run / "results.json"
    if pooling is not None:
        top = read_json(path) if path.is_file() else None
        if top is None or top.get("config", {}).get("pooling") != pooling:
            path = run / f"pooling-{pooling}" / "results.json"
            if not path.is_file():
                raise BlockError(f"no results.json for pooling {pooling} in {run}")
    return Results(read_json(path), path, params.get("seed"))


def per_token_probes(res: Results) -> list[str]:
    """Per-token probes on the residual (pooling "tokens", no SAE), in record order."""
    return [
        lab
        for lab in res.labels
        if "/" not in lab and (res.get(lab, "ood") or {}).get("pooling") == "tokens"
    ]


@kind("probe-dense-by-pooling")
def dense_by_pooling(run: Path, params: dict[str, str]) -> Block:
    rows = []
    for name in poolings(run):
        res = load(run, params, name)
        rows.append(
            [
                name,
                num(res.auroc("dense", "train")),
                res.auroc_interval("dense", "val"),
                res.auroc_interval("dense", "ood"),
            ]
        )
    return Block(table(["pooling", "dense train", "dense val", "dense OOD"], rows))


@kind("probe-baselines")
def baselines(run: Path, params: dict[str, str]) -> Block:
    """The dense probe and every per-token probe on the residual, with operating points."""
    res = load(run, params)
    rows = []
    for lab in ["dense", *per_token_probes(res)]:
        val, ood = res.get(lab, "val"), res.get(lab, "ood")
        if ood is None:
            continue
        comp = res.comparison("vs_dense", lab, "ood")
        delta = (
            "–"
            if lab == "dense" or comp is None
            else signed_interval(comp["delta"], comp["ci_low"], comp["ci_high"])
        )
        init = (
            span(ood["train_seed_auroc_min"], ood["train_seed_auroc_max"])
            if "train_seed_auroc_min" in ood
            else "–"
        )
        name = f"dense (linear on {res.pooling}-pooled)" if lab == "dense" else lab
        rows.append(
            [
                name,
                res.auroc_interval(lab, "val") if val else "–",
                res.auroc_interval(lab, "ood"),
                num(ood.get("tpr_at_1pct_fpr")),
                num(ood.get("tpr_at_1pct_fpr_val_threshold")),
                num(ood.get("fpr_at_val_threshold")),
                delta,
                init,
            ]
        )
    headers = [
        "probe",
        "val",
        "OOD",
        "TPR@1% OOD thr.",
        "TPR@1% val thr.",
        "OOD FPR",
        "Δ OOD vs dense",
        "init",
    ]
    return Block(table(headers, rows))


@kind("probe-best-sae-vs-dense")
def best_sae_vs_dense(run: Path, params: dict[str, str]) -> Block:
    """Per SAE, its best SAE probe (chosen on validation by the probe run) against dense."""
    res = load(run, params)
    rows = []
    for sae in res.saes:
        comps = {s: res.comparison("best_sae_vs_dense", None, s, sae=sae) for s in SPLITS}
        if comps["ood"] is None:
            continue
        best = comps["ood"]["probe_a"]
        ood = res.get(best, "ood") or {}
        val_comp, ood_comp = comps["val"], comps["ood"]
        rows.append(
            [
                sae,
                f"`{best}`",
                num(val_comp["auroc_a"]) if val_comp else "–",
                res.auroc_interval(best, "ood"),
                f"{num(ood.get('tpr_at_1pct_fpr_val_threshold'))} "
                f"({num(ood.get('fpr_at_val_threshold'))})",
                signed_interval(val_comp["delta"], val_comp["ci_low"], val_comp["ci_high"])
                if val_comp
                else "–",
                signed_interval(ood_comp["delta"], ood_comp["ci_low"], ood_comp["ci_high"]),
            ]
        )
    headers = ["SAE", "best probe", "val", "OOD", "TPR@1% val thr. (OOD FPR)", "Δ val", "Δ OOD"]
    return Block(table(headers, rows))


@kind("probe-per-token-sae")
def per_token_sae(run: Path, params: dict[str, str]) -> Block:
    """OOD AUROC of every per-token probe on each SAE's selected latents, and on the residual."""
    res = load(run, params)
    probes = per_token_probes(res)
    rows, vals = [], []
    for sae in res.saes:
        row = [sae]
        for probe in probes:
            labs = [lab for lab in res.labels if lab.startswith(f"{probe}/{sae}/")]
            row.append(num(res.auroc(labs[0], "ood")) if labs else "–")
            vals += [v for v in (res.auroc(lab, "val") for lab in labs[:1]) if v is not None]
        rows.append(row)
    rows.append(["*residual*", *(num(res.auroc(p, "ood")) for p in probes)])
    text = table(["SAE", *probes], rows)
    if vals:
        text += f"\n\nValidation AUROC of the SAE-latent rows: {span(min(vals), max(vals))}."
    return Block(text)


@kind("probe-sae-table")
def sae_table(run: Path, params: dict[str, str]) -> Block:
    """Per SAE: 1-sparse, k-sparse (L1 and mean-difference) and reconstruction probes."""
    res = load(run, params)
    k = int(params.get("k", "20"))
    rows = []
    for sae in res.saes:
        one = next((lab for lab in res.labels if lab.startswith(f"one_sparse/{sae}/")), "")
        l1, md = f"k_sparse/{sae}/l1/k{k}", f"k_sparse/{sae}/mean_diff/k{k}"
        rows.append(
            [
                sae,
                res.auroc_interval(one, "ood"),
                num(res.auroc(l1, "val")),
                res.auroc_interval(l1, "ood"),
                res.auroc_interval(md, "ood"),
                res.auroc_interval(f"reconstruction/{sae}", "ood"),
            ]
        )
    headers = [
        "SAE",
        "1-sparse OOD",
        f"k={k} L1 val",
        f"k={k} L1 OOD",
        f"k={k} mean-diff OOD",
        "reconstruction OOD",
    ]
    caption = f"**{res.pooling} pooling** (dense OOD {res.auroc_interval('dense', 'ood')}):"
    return Block(caption + "\n\n" + table(headers, rows))


@kind("probe-reconstruction-delta")
def reconstruction_delta(run: Path, params: dict[str, str]) -> Block:
    res = load(run, params)
    cells: dict[str, dict[str, str]] = {}
    for rec in res.data.get("reconstruction_delta", []):
        if rec.get("seed") != res.seed:
            continue
        cells.setdefault(rec["sae"], {})[rec["split"]] = signed_interval(
            rec["delta"], rec["delta_ci_low"], rec["delta_ci_high"]
        )
    rows = [[sae, *(cells[sae].get(s, "–") for s in SPLITS)] for sae in cells]
    return Block(
        table(["SAE", "Train", "Val", "OOD"], rows)
        + "\n\nAUROC(dense on the residual) − AUROC(dense on the SAE reconstruction), paired"
        + "\nbootstrap 95 % CI."
    )


@kind("probe-c-criterion")
def c_criterion(run: Path, params: dict[str, str]) -> Block:
    """The C each criterion picks for the dense probe, and the dense AUROC at it."""
    res = load(run, params)
    used = res.config.get("c_criterion")
    rows = []
    for rec in res.data.get("dense_c_choice", []):
        if rec.get("seed") != res.seed:
            continue
        name = rec["criterion"] + (" (this run)" if rec["criterion"] == used else "")
        rows.append(
            [name, c_value(rec.get("c")), num(rec.get("auroc_val")), num(rec.get("auroc_ood"))]
        )
    if not rows:
        raise BlockError(f"{res.path} has no dense_c_choice")
    return Block(table(["criterion", "C", "val", "OOD"], rows))


@kind("probe-rows")
def probe_rows(run: Path, params: dict[str, str]) -> Block:
    """Chosen probes by label (`probes=dense,one_sparse/*,k_sparse/*/l1/k20`; `*` is a glob)."""
    res = load(run, params)
    patterns = [p for p in params.get("probes", "dense").split(",") if p]
    rows, seen = [], set()
    for pattern in patterns:
        for lab in res.labels:
            if lab in seen or not fnmatch.fnmatchcase(lab, pattern):
                continue
            seen.add(lab)
            rows.append(
                [
                    f"`{lab}`",
                    num(res.auroc(lab, "train")),
                    res.auroc_interval(lab, "val"),
                    res.auroc_interval(lab, "ood"),
                ]
            )
    if not rows:
        raise BlockError(f"no probe in {res.path} matches {params.get('probes')}")
    return Block(table(["probe", "train", "val", "OOD"], rows))


@kind("probe-dense-cv")
def dense_cv(run: Path, params: dict[str, str]) -> Block:
    """The dense probe's grouped-CV curve over C (`probe_info`), 4 decimals: it saturates."""
    res = load(run, params)
    info = next(
        (
            p
            for p in res.data.get("probe_info", [])
            if p.get("probe") == "dense" and p.get("seed") == res.seed
        ),
        None,
    )
    if info is None or "cv_cs" not in info:
        raise BlockError(f"{res.path} has no CV curve of the dense probe")
    rows = [
        [c_value(c) + (" (chosen)" if c == info.get("c") else ""), num(a, 4), num(ll, 4)]
        for c, a, ll in zip(info["cv_cs"], info["cv_auroc"], info["cv_log_loss"], strict=True)
    ]
    return Block(table(["C", "CV AUROC", "CV log-loss"], rows))


@kind("layer-scan")
def layer_scan(run: Path, params: dict[str, str]) -> Block:
    """`saeprobe scan-layers` (`layer_scan.json`): per layer and pooling, CV AUROC / log-loss.

    `poolings=` orders the columns (default: the scan's order)."""
    records = read_json(run / "layer_scan.json").get("records", [])
    cells = {(r["layer"], r["pooling"]): r for r in records}
    order = list(dict.fromkeys(r["pooling"] for r in records))
    columns = params["poolings"].split(",") if "poolings" in params else order
    unknown = [p for p in columns if p not in order]
    if unknown:
        raise BlockError(f"{run / 'layer_scan.json'} has no pooling {', '.join(unknown)}")
    rows = []
    for layer in sorted({r["layer"] for r in records}):
        row = [str(layer)]
        for pool in columns:
            r = cells.get((layer, pool))
            row.append(f"{num(r['cv_auroc'], 4)} / {num(r['cv_log_loss'], 4)}" if r else "–")
        rows.append(row)
    return Block(table(["layer", *columns], rows))


@kind("probe-per-token-by-pooling")
def per_token_by_pooling(run: Path, params: dict[str, str]) -> Block:
    """Per pooling: the dense OOD AUROC and each residual per-token probe's Δ OOD against it."""
    rows, probes = [], None
    for name in poolings(run):
        res = load(run, params, name)
        probes = probes or per_token_probes(res)
        row = [name, res.auroc_interval("dense", "ood")]
        for probe in probes:
            comp = res.comparison("vs_dense", probe, "ood")
            row.append(
                signed_interval(comp["delta"], comp["ci_low"], comp["ci_high"]) if comp else "–"
            )
        rows.append(row)
    return Block(table(["pooling", "dense OOD", *(f"Δ {p}" for p in probes or [])], rows))


@kind("probe-best-sae-by-pooling")
def best_sae_by_pooling(run: Path, params: dict[str, str]) -> Block:
    """Per SAE and pooling: Δ OOD of its best SAE probe (chosen on val) against dense."""
    names = poolings(run)
    results = [load(run, params, name) for name in names]
    rows = []
    for sae in results[0].saes:
        row = [sae]
        for res in results:
            comp = res.comparison("best_sae_vs_dense", None, "ood", sae=sae)
            row.append(
                "–"
                if comp is None
                else f"{signed_interval(comp['delta'], comp['ci_low'], comp['ci_high'])} "
                f"`{_without_sae(comp['probe_a'], sae)}`"
            )
        rows.append(row)
    return Block(table(["SAE", *names], rows))


def _without_sae(lab: str, sae: str) -> str:
    """`k_sparse/pt/l1/k50` -> `k_sparse/l1/k50` (the column already names the SAE)."""
    return "/".join(part for i, part in enumerate(lab.split("/")) if not (i == 1 and part == sae))
