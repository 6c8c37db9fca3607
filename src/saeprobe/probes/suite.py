"""The PROBES stage: fit every probe type on train, score train/val/ood, tabulate.

Leakage rules, enforced by construction:
- every probe's `fit` receives the training split's arrays and nothing else; standardisation
  statistics, C (grouped CV over base_id), latent selection and the random draw all come
  from train;
- val and ood are only ever passed to `decision_function` and the metrics; nothing is chosen
  by their scores (no best-k, no best-C, no early stopping on them).

Per record (`ProbeResults.results`): AUROC (exact, ties count 1/2), a 95 % bootstrap
percentile interval around it (over base prompts by default), TPR at 1 % FPR with the
threshold from the evaluated split's own negatives (`tpr_at_1pct_fpr`, optimistic under
shift), the deployable version with the threshold fixed on the validation negatives
(`tpr_at_1pct_fpr_val_threshold`) and the FPR that threshold realises on the split
(`fpr_at_val_threshold`), and the class counts. Bootstrap resamples depend only on (seed,
split), so every probe on a split is resampled identically: the reconstruction delta and the
`comparisons` (`saeprobe.probes.comparisons`) are paired bootstraps.

Probes fitted outside the pooled suite (the per-token probes, `saeprobe.probes.per_token`) come
in as `scored` probes with their scores per split and are recorded like the others; their
`train_seed_auroc_*` fields give the spread over their training seeds. With `sae_seeds`, every
SAE probe also gets `sae_seed_auroc_*`: its spread over copies of the SAE trained with other
seeds (those copies' own records go to `sae_seed_results`).

OOD breakdown convention (`ProbeResults.ood_breakdown`): per `source` and per `transform`
group of the OOD split, a group holding both classes is scored on its own rows; a
positive-only group (e.g. a jailbreak wrapper) is scored against all OOD negatives; a
negative-only group (e.g. hard negatives from one source) against all OOD positives. `n`,
`n_pos` and `reference` say which rows were compared.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from saeprobe.errors import ConfigError, DataError
from saeprobe.io_utils import atomic_write_json, atomic_write_text
from saeprobe.probes import cv
from saeprobe.probes.comparisons import (
    COMPARISON_COLUMNS,
    SAE_PROBES,
    best_label,
    paired_delta,
    probe_label,
)
from saeprobe.probes.data import SPLITS, ProbeData, SaeFeatures, as_sae_features
from saeprobe.probes.dense import DenseProbe
from saeprobe.probes.diff_of_means import DiffOfMeansProbe
from saeprobe.probes.k_sparse import KSparseProbe
from saeprobe.probes.metrics import (
    DEFAULT_MAX_FPR,
    DEFAULT_N_BOOTSTRAP,
    SplitMetrics,
    auroc,
    evaluate_scores,
    group_aurocs,
    threshold_at_fpr,
)
from saeprobe.probes.one_sparse import OneSparseProbe
from saeprobe.probes.per_token.heads import PER_TOKEN_PROBES
from saeprobe.probes.per_token.suite import ScoredProbe
from saeprobe.probes.random_latents import RandomLatentsProbe
from saeprobe.probes.reconstruction import ReconstructionProbe
from saeprobe.probes.selection import (
    DEFAULT_L1_PRESCREEN,
    SELECTIONS,
    L1Choice,
    LatentStats,
    check_ks,
    l1_select,
    latent_stats,
    rank_latents,
)

__all__ = [
    "DEFAULT_KS",
    "PER_TOKEN_PROBES",
    "PROBE_TYPES",
    "RESULT_COLUMNS",
    "ProbeResults",
    "run_probe_suite",
    "write_results",
]

DEFAULT_KS = (1, 2, 5, 10, 20, 50)
PROBE_TYPES = (
    "dense",
    "diff_of_means",
    "one_sparse",
    "k_sparse",
    "reconstruction",
    "random_latents",
)
RESULT_COLUMNS = (
    "probe",
    "sae",
    "k",
    "selection",
    "seed",
    "split",
    "auroc",
    "auroc_ci_low",
    "auroc_ci_high",
    "tpr_at_1pct_fpr",
    "tpr_at_1pct_fpr_val_threshold",
    "fpr_at_val_threshold",
    "n",
    "n_pos",
    "n_train_seeds",
    "train_seed_auroc_min",
    "train_seed_auroc_max",
    "train_seed_auroc_std",
    "n_sae_seeds",
    "sae_seed_auroc_min",
    "sae_seed_auroc_max",
    "sae_seed_auroc_std",
)
BREAKDOWN_COLUMNS = (
    "probe",
    "sae",
    "k",
    "selection",
    "seed",
    "group_type",
    "group",
    "auroc",
    "n",
    "n_pos",
    "reference",
)
DELTA_COLUMNS = (
    "sae",
    "seed",
    "split",
    "dense_auroc",
    "reconstruction_auroc",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
)


_NO_SPREAD = dict.fromkeys(
    (
        "n_train_seeds",
        "train_seed_auroc_min",
        "train_seed_auroc_max",
        "train_seed_auroc_std",
        "n_sae_seeds",
        "sae_seed_auroc_min",
        "sae_seed_auroc_max",
        "sae_seed_auroc_std",
    )
)


def _json_safe(value: Any) -> Any:
    """Plain JSON types; NaN/inf become None (json.dumps would write invalid `NaN`)."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class ProbeResults:
    """Everything one suite run produced.

    results: one record per (probe, sae, k, selection, seed, split) with the columns in
        `RESULT_COLUMNS` (`sae` None for dense/diff_of_means; `k` None for dense,
        diff_of_means and reconstruction, 1 for one_sparse).
    ood_breakdown: per OOD source / transform group, see the module docstring.
    reconstruction_delta: per (sae, seed, split) dense AUROC - reconstruction AUROC and its
        paired-bootstrap interval.
    comparisons: paired AUROC differences, `COMPARISON_COLUMNS` (see
        `saeprobe.probes.comparisons`).
    probe_info: per fitted probe, its details: chosen C, C criterion and CV curves (AUROC and
        log-loss; for dense also `c_by_criterion`, the C and AUROCs each criterion gives),
        selected `latents` (one_sparse: the latent and its sign; k_sparse/random_latents: the k
        indices, best first for mean_diff selections, by |weight| for l1), L1 path point;
        per-token probes: weight decay, epochs, CV curves per epoch and weight decay.
    sae_seed_results: records of the SAE copies trained with other seeds (`sae_seeds`).
    dense_c_choice: per seed and C criterion (`cv.C_CRITERIA`), the C it picks from the dense
        probe's CV curves and that dense probe's AUROC per split (`chosen` marks the one
        used): whether the criterion moves OOD AUROC. Nothing is chosen from these scores.
    timings: seconds per stage ("fit:<probe>", "select:<selection>", "latent_stats",
        "metrics", "ood_breakdown", "validate", "total").
    config: the settings and input sizes of the run.
    """

    results: list[dict[str, Any]] = field(default_factory=list)
    ood_breakdown: list[dict[str, Any]] = field(default_factory=list)
    reconstruction_delta: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    probe_info: list[dict[str, Any]] = field(default_factory=list)
    sae_seed_results: list[dict[str, Any]] = field(default_factory=list)
    dense_c_choice: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    # (probe_label, seed, split) -> bootstrap AUROC replicates, for further paired comparisons
    # (`compare`); kept in memory only.
    replicates: dict[tuple[str, int, str], np.ndarray] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return _json_safe(
            {
                "config": self.config,
                "timings": self.timings,
                "results": self.results,
                "comparisons": self.comparisons,
                "reconstruction_delta": self.reconstruction_delta,
                "ood_breakdown": self.ood_breakdown,
                "probe_info": self.probe_info,
                "sae_seed_results": self.sae_seed_results,
                "dense_c_choice": self.dense_c_choice,
            }
        )

    def to_csv_rows(self) -> list[dict[str, Any]]:
        """The `results` records restricted to `RESULT_COLUMNS`, in that order."""
        return [{c: r.get(c) for c in RESULT_COLUMNS} for r in self.results]

    def find(self, **match: Any) -> list[dict[str, Any]]:
        """The `results` records whose fields equal every keyword, e.g. find(probe="dense")."""
        return [r for r in self.results if all(r.get(k) == v for k, v in match.items())]

    def compare(self, probe_a: str, probe_b: str, split: str, seed: int = 0) -> dict[str, Any]:
        """Paired-bootstrap AUROC difference of two probes (by `probe_label`) on one split."""
        aurocs = {(probe_label(r), r["seed"], r["split"]): r["auroc"] for r in self.results}
        for label in (probe_a, probe_b):
            if (label, seed, split) not in self.replicates:
                raise DataError(
                    f"no scores of probe {label!r} on split {split!r} (seed {seed}); name "
                    "probes as probe_label gives them, e.g. 'dense' or 'k_sparse/sae/l1/k20'"
                )
        delta, low, high = paired_delta(
            aurocs[(probe_a, seed, split)],
            aurocs[(probe_b, seed, split)],
            self.replicates[(probe_a, seed, split)],
            self.replicates[(probe_b, seed, split)],
        )
        return {
            "probe_a": probe_a,
            "probe_b": probe_b,
            "seed": seed,
            "split": split,
            "auroc_a": aurocs[(probe_a, seed, split)],
            "auroc_b": aurocs[(probe_b, seed, split)],
            "delta": delta,
            "ci_low": low,
            "ci_high": high,
        }


def _csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    return buf.getvalue()


def write_results(results: ProbeResults, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write results.json, results.csv, ood_breakdown.csv, comparisons.csv, summary.md and
    reconstruction_delta.md atomically (the last only when some SAE was probed)."""
    from saeprobe.probes.plots import reconstruction_delta_markdown
    from saeprobe.probes.tables import summary_markdown

    out = Path(out_dir)
    paths = {
        "json": out / "results.json",
        "csv": out / "results.csv",
        "ood_breakdown": out / "ood_breakdown.csv",
        "comparisons": out / "comparisons.csv",
        "summary": out / "summary.md",
    }
    atomic_write_json(paths["json"], results.to_json())
    atomic_write_text(paths["csv"], _csv_text(results.to_csv_rows(), RESULT_COLUMNS))
    atomic_write_text(paths["ood_breakdown"], _csv_text(results.ood_breakdown, BREAKDOWN_COLUMNS))
    atomic_write_text(paths["comparisons"], _csv_text(results.comparisons, COMPARISON_COLUMNS))
    atomic_write_text(paths["summary"], summary_markdown(results) + "\n")
    if results.reconstruction_delta:
        paths["reconstruction_delta"] = out / "reconstruction_delta.md"
        atomic_write_text(
            paths["reconstruction_delta"], reconstruction_delta_markdown(results) + "\n"
        )
    return paths


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


class _Fittable(Protocol):
    """What the suite needs of a fitted probe (every probe class has these)."""

    def decision_function(self, x: np.ndarray) -> np.ndarray: ...

    def info(self) -> dict[str, Any]: ...


@dataclass
class _SaeCache:
    """Seed-independent, train-only work done once per SAE."""

    stats: LatentStats
    selected: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    l1: dict[int, L1Choice] = field(default_factory=dict)
    one_sparse: OneSparseProbe | None = None


class _Run:
    def __init__(
        self,
        data: ProbeData,
        saes: Mapping[str, SaeFeatures],
        *,
        ks: tuple[int, ...],
        selections: tuple[str, ...],
        n_bootstrap: int,
        cs: tuple[float, ...],
        n_splits: int,
        l1_prescreen: int,
        sparse_c: float | None,
        max_fpr: float,
        bootstrap_unit: str,
        c_criterion: str,
        scored: Sequence[ScoredProbe],
    ) -> None:
        self.data = data
        self.saes = saes
        self.ks = ks
        self.selections = selections
        self.n_bootstrap = n_bootstrap
        self.cs = cs
        self.n_splits = n_splits
        self.l1_prescreen = l1_prescreen
        self.sparse_c = sparse_c
        self.max_fpr = max_fpr
        self.bootstrap_unit = bootstrap_unit
        self.c_criterion = c_criterion
        self.scored = scored
        self.out = ProbeResults()
        self.cache: dict[str, _SaeCache] = {}
        # The training split: the only arrays any `fit` call in this class ever receives.
        self.y_train = np.asarray(data.y["train"]).astype(int)
        self.groups_train = list(data.base_id["train"])

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            t = self.out.timings
            t[stage] = t.get(stage, 0.0) + time.perf_counter() - start

    # -- evaluation ------------------------------------------------------------------------

    def _bootstrap_groups(self, split: str) -> Sequence[Any] | None:
        """Resampling units: base prompts (cluster bootstrap) unless rows were asked for."""
        groups = self.data.base_id.get(split)
        if self.bootstrap_unit != "base_id" or groups is None or len(groups) == 0:
            return None
        return groups

    def evaluate(
        self,
        key: dict[str, Any],
        probe: _Fittable,
        features: Callable[[str], np.ndarray],
        info: dict[str, Any] | None = None,
    ) -> dict[str, SplitMetrics]:
        """Score every split with the fitted probe; append result and breakdown records."""
        with self.timed("metrics"):
            scores = {split: probe.decision_function(features(split)) for split in self.data.splits}
        return self.record(key, scores, {**probe.info(), **(info or {})})

    def record(
        self,
        key: dict[str, Any],
        scores: Mapping[str, np.ndarray],
        info: dict[str, Any],
        seed_scores: Mapping[str, np.ndarray] | None = None,
    ) -> dict[str, SplitMetrics]:
        """Metrics of one probe's scores on every split: result, breakdown and info records.

        `seed_scores` (split -> [n_seeds, n]) adds the spread of AUROC over training seeds.
        """
        self.out.probe_info.append({**key, **info})
        label = probe_label(key)
        threshold = None
        if "val" in scores:
            y_val = np.asarray(self.data.y["val"]).astype(int)
            threshold = threshold_at_fpr(y_val, scores["val"], self.max_fpr, split="val")
        per_split: dict[str, SplitMetrics] = {}
        for split in self.data.splits:
            y = np.asarray(self.data.y[split]).astype(int)
            with self.timed("metrics"):
                metrics = evaluate_scores(
                    y,
                    scores[split],
                    split=split,
                    n_bootstrap=self.n_bootstrap,
                    # Depends on (seed, split) only: every probe shares the resamples.
                    seed=[key["seed"], SPLITS.index(split)],
                    max_fpr=self.max_fpr,
                    groups=self._bootstrap_groups(split),
                    val_threshold=threshold,
                )
            per_split[split] = metrics
            self.out.replicates[(label, key["seed"], split)] = metrics.replicates
            # Every record has every column; the seed spreads stay None where they do not apply.
            record = {**key, "split": split, **metrics.as_record(), **_NO_SPREAD}
            if seed_scores is not None:
                aucs = [auroc(y, s, split=split) for s in seed_scores[split]]
                record |= {
                    "n_train_seeds": len(aucs),
                    "train_seed_auroc_min": float(np.min(aucs)),
                    "train_seed_auroc_max": float(np.max(aucs)),
                    "train_seed_auroc_std": float(np.std(aucs)),
                }
            self.out.results.append(record)
            if split == "ood":
                with self.timed("ood_breakdown"):
                    for group_type in ("source", "transform"):
                        meta = getattr(self.data, group_type)
                        for row in group_aurocs(y, scores[split], meta["ood"], split="ood"):
                            self.out.ood_breakdown.append({**key, "group_type": group_type, **row})
        return per_split

    # -- probes ----------------------------------------------------------------------------

    def fit(self, stage: str, probe: Any, x_train: np.ndarray) -> Any:
        with self.timed(f"fit:{stage}"):
            return probe.fit(x_train, self.y_train, self.groups_train)

    def sae_cache(self, name: str) -> _SaeCache:
        if name not in self.cache:
            with self.timed("latent_stats"):
                stats = latent_stats(self.saes[name].Z["train"], self.y_train)
            self.cache[name] = _SaeCache(stats=stats)
        return self.cache[name]

    def selected(self, name: str, selection: str) -> dict[int, np.ndarray]:
        cache = self.sae_cache(name)
        if selection not in cache.selected:
            z_train = self.saes[name].Z["train"]
            with self.timed(f"select:{selection}"):
                if selection == "l1":
                    cache.l1 = l1_select(
                        z_train,
                        self.y_train,
                        self.ks,
                        stats=cache.stats,
                        prescreen=self.l1_prescreen,
                    )
                    cache.selected[selection] = {k: c.latents for k, c in cache.l1.items()}
                else:
                    order = rank_latents(cache.stats, selection)
                    cache.selected[selection] = {k: order[:k] for k in self.ks}
        return cache.selected[selection]

    def c_alternatives(self, dense: DenseProbe) -> list[dict[str, Any]]:
        """The C each criterion picks from the dense probe's CV curves, and the AUROC per split
        of the dense probe refit at it: does the choice of criterion move OOD AUROC? (Nothing
        is chosen from these scores; they are recorded apart from the probe's own info.)"""
        if dense.cv_ is None:
            return []
        rows = []
        for criterion in cv.C_CRITERIA:
            at = cv.choose_c(dense.cv_.mean_auroc, dense.cv_.mean_log_loss, criterion)
            c = dense.cv_.cs[at]
            probe = (
                dense if c == dense.c_ else DenseProbe(c=c).fit(self.data.X["train"], self.y_train)
            )
            aucs = {
                f"auroc_{split}": auroc(
                    np.asarray(self.data.y[split]).astype(int),
                    probe.decision_function(self.data.X[split]),
                    split=split,
                )
                for split in self.data.splits
            }
            rows.append({"criterion": criterion, "c": c, "chosen": c == dense.c_, **aucs})
        return rows

    def run_seed(self, seed: int) -> None:
        data, out = self.data, self.out
        linear_kw = {
            "cs": self.cs,
            "n_splits": self.n_splits,
            "seed": seed,
            "criterion": self.c_criterion,
        }
        sparse_kw = {**linear_kw, "c": self.sparse_c}
        base = {"sae": None, "k": None, "selection": None, "seed": seed}

        dense = self.fit("dense", DenseProbe(**linear_kw), data.X["train"])
        dense_metrics = self.evaluate({"probe": "dense", **base}, dense, lambda s: data.X[s])
        out.dense_c_choice.extend({"seed": seed, **row} for row in self.c_alternatives(dense))
        dom = self.fit("diff_of_means", DiffOfMeansProbe(), data.X["train"])
        self.evaluate({"probe": "diff_of_means", **base}, dom, lambda s: data.X[s])
        for probe in self.scored:
            key = {**probe.key, "seed": seed}
            info = {**probe.info, "fit_seconds": round(probe.seconds, 3)}
            self.record(key, probe.scores, info, probe.seed_scores)

        for name, sae in self.saes.items():
            cache = self.sae_cache(name)
            z = sae.Z
            # one_sparse depends on train only, not on the seed: fit once per SAE.
            if cache.one_sparse is None:
                cache.one_sparse = self.fit("one_sparse", OneSparseProbe(), z["train"])
            key = {"probe": "one_sparse", "sae": name, "k": 1, "selection": "train_auroc"}
            self.evaluate({**key, "seed": seed}, cache.one_sparse, lambda s, z=z: z[s])

            for selection in self.selections:
                for k, latents in self.selected(name, selection).items():
                    probe = KSparseProbe(k, selection, latents=latents, **sparse_kw)
                    self.fit("k_sparse", probe, z["train"])
                    extra = {}
                    if selection == "l1":
                        choice = cache.l1[k]
                        extra = {
                            "l1_c": choice.c,
                            "l1_n_nonzero": choice.n_nonzero,
                            "l1_n_padded": choice.n_padded,
                        }
                    key = {"probe": "k_sparse", "sae": name, "k": k, "selection": selection}
                    self.evaluate({**key, "seed": seed}, probe, lambda s, z=z: z[s], extra)

            recon = self.fit("reconstruction", ReconstructionProbe(**linear_kw), sae.R["train"])
            key = {"probe": "reconstruction", "sae": name, "k": None, "selection": None}
            recon_metrics = self.evaluate({**key, "seed": seed}, recon, lambda s, r=sae.R: r[s])
            for split, d in dense_metrics.items():
                r = recon_metrics[split]
                diffs = d.replicates - r.replicates
                low, high = np.quantile(diffs, [0.025, 0.975])
                out.reconstruction_delta.append(
                    {
                        "sae": name,
                        "seed": seed,
                        "split": split,
                        "dense_auroc": d.auroc,
                        "reconstruction_auroc": r.auroc,
                        "delta": d.auroc - r.auroc,
                        "delta_ci_low": float(low),
                        "delta_ci_high": float(high),
                    }
                )

            for k in self.ks:
                # Seeded by (seed, SAE name, k): reproducible, and independent across k.
                latent_seed = [seed, zlib.crc32(name.encode()), k]
                probe = RandomLatentsProbe(k, latent_seed=latent_seed, **sparse_kw)
                self.fit("random_latents", probe, z["train"])
                key = {"probe": "random_latents", "sae": name, "k": k, "selection": "random"}
                self.evaluate({**key, "seed": seed}, probe, lambda s, z=z: z[s])


def _check_scored(scored: Sequence[ScoredProbe], data: ProbeData) -> list[ScoredProbe]:
    """Every externally fitted probe has one finite score per row of every split."""
    for probe in scored:
        for split in data.splits:
            scores = probe.scores.get(split)
            n = int(np.size(data.y[split]))
            if scores is None or np.shape(scores) != (n,):
                raise DataError(
                    f"probe {probe_label(probe.key)} has no {n} scores for split {split!r}; "
                    "score every split's prompts in the same order as the pooled features"
                )
    return list(scored)


def _spread_over_sae_seeds(out: ProbeResults, sae_seeds: Mapping[str, Sequence[str]]) -> None:
    """Add `sae_seed_auroc_*` to each record of an SAE that has copies trained with other
    seeds, and move the copies' records (results, breakdown, reconstruction delta) aside."""
    copy_of = {copy: primary for primary, copies in sae_seeds.items() for copy in copies}
    if not copy_of:
        return

    def same_probe(r: Mapping[str, Any]) -> tuple:
        sae = copy_of.get(r.get("sae"), r.get("sae"))
        return (r["probe"], sae, r.get("k"), r.get("selection"), r["seed"], r["split"])

    by_probe: dict[tuple, list[float]] = {}
    for r in out.results:
        by_probe.setdefault(same_probe(r), []).append(r["auroc"])
    kept = []
    for r in out.results:
        if r.get("sae") in copy_of:
            out.sae_seed_results.append({**r, "sae_seed_of": copy_of[r["sae"]]})
            continue
        if r.get("sae") in sae_seeds:
            aucs = by_probe[same_probe(r)]
            r |= {
                "n_sae_seeds": len(aucs),
                "sae_seed_auroc_min": float(np.min(aucs)),
                "sae_seed_auroc_max": float(np.max(aucs)),
                "sae_seed_auroc_std": float(np.std(aucs)),
            }
        kept.append(r)
    out.results = kept
    out.ood_breakdown = [r for r in out.ood_breakdown if r.get("sae") not in copy_of]
    out.reconstruction_delta = [r for r in out.reconstruction_delta if r["sae"] not in copy_of]


def _comparisons(out: ProbeResults, seeds: Sequence[int], saes: Sequence[str]) -> None:
    """The paired comparisons of `saeprobe.probes.comparisons` (module docstring there)."""
    aurocs = {(probe_label(r), r["seed"], r["split"]): r["auroc"] for r in out.results}
    splits = [s for s in SPLITS if any(r["split"] == s for r in out.results)]
    first_split = splits[0] if splits else None

    def add(kind: str, a: str, b: str, sae: str | None, seed: int, chosen_by: str | None = None):
        for split in splits:
            if (a, seed, split) not in aurocs or (b, seed, split) not in aurocs:
                continue
            record = out.compare(a, b, split, seed) | {
                "kind": kind, "sae": sae, "chosen_by": chosen_by
            }  # fmt: skip
            out.comparisons.append({c: record[c] for c in COMPARISON_COLUMNS})

    for seed in seeds:
        rows = [r for r in out.results if r["seed"] == seed and r["split"] == first_split]
        for r in rows:
            if r["probe"] in PER_TOKEN_PROBES and r.get("sae") is None:
                add("vs_dense", probe_label(r), "dense", None, seed)
        for sae in saes:
            of_sae = [r for r in rows if r.get("sae") == sae]
            k_sparse = [probe_label(r) for r in of_sae if r["probe"] == "k_sparse"]
            best_k, by = best_label(aurocs, k_sparse, seed)
            if best_k is not None:
                add("vs_dense", best_k, "dense", sae, seed, f"best k_sparse by {by} AUROC")
            token = [r for r in of_sae if r["probe"] in PER_TOKEN_PROBES]
            for r in token:
                add("vs_dense", probe_label(r), "dense", sae, seed)
                residual = probe_label({**r, "sae": None, "k": None, "selection": None})
                add("sae_vs_residual_aggregation", probe_label(r), residual, sae, seed)
            candidates = [probe_label(r) for r in of_sae if r["probe"] in SAE_PROBES] + [
                probe_label(r) for r in token
            ]
            best, by = best_label(aurocs, candidates, seed)
            if best is not None:
                add("best_sae_vs_dense", best, "dense", sae, seed, f"best SAE probe by {by} AUROC")


def _check_settings(
    ks: Sequence[int], selections: Sequence[str], seeds: Sequence[int], n_bootstrap: int
) -> tuple[tuple[int, ...], tuple[str, ...], tuple[int, ...]]:
    ks_list = list(ks)
    for k in ks_list:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ConfigError(f"k={k!r} must be a positive integer; pass ks like (1, 2, 5, 10)")
    if not ks_list:
        raise ConfigError("ks is empty; pass at least one k, e.g. (1, 2, 5, 10, 20, 50)")
    bad = [s for s in selections if s not in SELECTIONS]
    if bad:
        raise ConfigError(f"unknown selection(s) {bad}; use a subset of {SELECTIONS}")
    seeds_list = list(seeds)
    if not seeds_list or any(
        isinstance(s, bool) or not isinstance(s, int | np.integer) for s in seeds_list
    ):
        raise ConfigError(f"seeds={tuple(seeds)} must be a non-empty list of integers, e.g. (0,)")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 1:
        raise ConfigError(f"n_bootstrap={n_bootstrap!r} must be a positive integer, e.g. 1000")
    return (
        tuple(sorted({int(k) for k in ks_list})),
        tuple(dict.fromkeys(selections)),
        tuple(dict.fromkeys(int(s) for s in seeds_list)),
    )


def run_probe_suite(
    data: ProbeData,
    saes: Mapping[str, SaeFeatures | Mapping[str, Any]],
    ks: Sequence[int] = DEFAULT_KS,
    selections: Sequence[str] = SELECTIONS,
    seeds: Sequence[int] = (0,),
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
    *,
    cs: Sequence[float] = cv.DEFAULT_CS,
    n_splits: int = cv.DEFAULT_N_SPLITS,
    l1_prescreen: int = DEFAULT_L1_PRESCREEN,
    sparse_c: float | None = None,
    max_fpr: float = DEFAULT_MAX_FPR,
    bootstrap_unit: str = "base_id",
    c_criterion: str = cv.DEFAULT_C_CRITERION,
    scored: Sequence[ScoredProbe] = (),
    sae_seeds: Mapping[str, Sequence[str]] | None = None,
) -> ProbeResults:
    """Fit and score every probe type for every SAE and seed; see the module docstring.

    `saes` maps an SAE name to its `SaeFeatures` (or {"Z": {split: ...}, "R": {split: ...}}).
    `seeds` changes the CV fold shuffle, the random-latent draw and the bootstrap resamples.
    `cs`, `n_splits` and `c_criterion` set how every logistic probe picks C by grouped CV;
    `l1_prescreen` the latents the L1 path starts from; `sparse_c` fixes C for the refit of
    k_sparse/random_latents instead of CV. `bootstrap_unit` "base_id" resamples base prompts
    (a cluster bootstrap, the default when base_ids are given), "row" resamples rows. Every k
    must not exceed the latents that fire on train for any SAE (DataError before anything is
    fitted). `scored`: probes fitted elsewhere (per-token probes) to record and compare.
    `sae_seeds` maps an SAE name to the names (in `saes`) of its copies trained with other
    seeds.
    """
    start = time.perf_counter()
    ks_t, selections_t, seeds_t = _check_settings(ks, selections, seeds, n_bootstrap)
    if bootstrap_unit not in ("base_id", "row"):
        raise ConfigError(f"bootstrap_unit={bootstrap_unit!r}; use 'base_id' or 'row'")
    if c_criterion not in cv.C_CRITERIA:
        raise ConfigError(f"unknown C criterion {c_criterion!r}; use one of {cv.C_CRITERIA}")
    sae_seeds = {k: list(v) for k, v in (sae_seeds or {}).items()}
    for primary, copies in sae_seeds.items():
        missing = [n for n in [primary, *copies] if n not in saes]
        if missing:
            raise DataError(
                f"sae_seeds names SAE(s) {missing} that are not among the probed SAEs; pass "
                "every seed's features in saes"
            )
    if not isinstance(data, ProbeData):
        raise DataError(
            "data must be a saeprobe.probes.ProbeData; build one from X, y and metadata"
        )
    features = {str(name): as_sae_features(value, str(name)) for name, value in saes.items()}
    validate_start = time.perf_counter()
    data.validate()
    for name, sae in features.items():
        sae.validate(name, data)
    for split in data.splits:
        y = np.asarray(data.y[split])
        if y.min() == y.max():
            present, missing = ("positive", "negative") if y[0] else ("negative", "positive")
            raise DataError(
                f"split {split!r} has only {present} labels ({y.size} rows), so AUROC is "
                f"undefined; add {missing} examples to the {split!r} split"
            )
    validate_seconds = time.perf_counter() - validate_start

    run = _Run(
        data,
        features,
        ks=ks_t,
        selections=selections_t,
        n_bootstrap=n_bootstrap,
        cs=tuple(cs),
        n_splits=n_splits,
        l1_prescreen=l1_prescreen,
        sparse_c=sparse_c,
        max_fpr=max_fpr,
        bootstrap_unit=bootstrap_unit,
        c_criterion=c_criterion,
        scored=_check_scored(scored, data),
    )
    run.out.timings["validate"] = validate_seconds
    # Every k must be feasible for every SAE before minutes of fitting start.
    for name in features:
        check_ks(ks_t, run.sae_cache(name).stats, f"SAE {name!r}")

    for seed in seeds_t:
        run.run_seed(seed)

    out = run.out
    with run.timed("comparisons"):
        _spread_over_sae_seeds(out, sae_seeds)
        copies = {c for cs_ in sae_seeds.values() for c in cs_}
        _comparisons(out, seeds_t, [n for n in features if n not in copies])
    out.config = {
        "ks": list(ks_t),
        "selections": list(selections_t),
        "seeds": list(seeds_t),
        "n_bootstrap": n_bootstrap,
        "cs": sorted(float(c) for c in cs),
        "n_splits": n_splits,
        "l1_prescreen": l1_prescreen,
        "sparse_c": sparse_c,
        "c_criterion": c_criterion,
        "max_fpr": max_fpr,
        "bootstrap_unit": bootstrap_unit,
        "sae_seeds": sae_seeds,
        "scored_probes": sorted({p.key["probe"] for p in scored}),
        "splits": {
            s: {"n": int(np.size(data.y[s])), "n_pos": int(np.sum(data.y[s]))} for s in data.splits
        },
        "d_model": int(np.shape(data.X["train"])[1]),
        "saes": {
            name: {"d_sae": c.stats.n_latents, "n_firing_train": c.stats.n_firing}
            for name, c in run.cache.items()
        },
        "base_id_overlap_with_train": data.base_id_overlap(),
    }
    out.timings["total"] = time.perf_counter() - start
    return out
