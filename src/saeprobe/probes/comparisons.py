"""Paired comparisons between probes on one split, and the headline choice of SAE probes.

Every probe scored on a split with the same suite seed is resampled identically by the
bootstrap (the resamples depend on (seed, split) only), so the difference of two probes'
bootstrap replicates is a paired bootstrap of their AUROC difference: the interval accounts for
both probes being scored on the same base prompts, which is far tighter and more honest than
comparing two separate intervals.

Convention: delta = AUROC(probe_a) - AUROC(probe_b), where probe_b is the reference (the dense
probe in every comparison the suite writes), so a negative delta means the dense probe wins.

Which comparisons the suite writes (`kind`), per suite seed and split:
- `vs_dense`: every per-token probe, the best k-sparse probe of each SAE, and every per-token
  probe on SAE latents, against the dense probe (the pooled linear probe);
- `best_sae_vs_dense`: per SAE, its best SAE probe (1-sparse, k-sparse or per-token on its
  latents) against the dense probe: the headline;
- `sae_vs_residual_aggregation`: each per-token probe on an SAE's latents against the same
  per-token probe on the residual ("does the SAE help a given aggregation?").

"Best" SAE probe = the highest *validation* AUROC (train when there is no validation split),
never OOD. Taking the best of many SAE probes on validation favours the SAE side, so a
comparison the dense probe still wins is conservative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["COMPARISON_COLUMNS", "SAE_PROBES", "best_label", "paired_delta", "probe_label"]

SAE_PROBES = ("one_sparse", "k_sparse")  # plus per-token probes on latents (sae is not None)
COMPARISON_COLUMNS = (
    "kind",
    "probe_a",
    "probe_b",
    "sae",
    "seed",
    "split",
    "auroc_a",
    "auroc_b",
    "delta",
    "ci_low",
    "ci_high",
    "chosen_by",
)


def probe_label(key: Mapping[str, Any]) -> str:
    """A stable, readable id of a probe: "dense", "k_sparse/pt/l1/k20", "ema/pt/l1/k20"."""
    parts = [str(key["probe"])]
    if key.get("sae") is not None:
        parts.append(str(key["sae"]))
    if key.get("selection") is not None:
        parts.append(str(key["selection"]))
    if key.get("k") is not None:
        parts.append(f"k{key['k']}")
    return "/".join(parts)


def paired_delta(
    auroc_a: float, auroc_b: float, replicates_a: np.ndarray, replicates_b: np.ndarray
) -> tuple[float, float, float]:
    """(delta, 2.5 %, 97.5 %) of AUROC_a - AUROC_b from paired bootstrap replicates."""
    low, high = np.quantile(np.asarray(replicates_a) - np.asarray(replicates_b), [0.025, 0.975])
    return float(auroc_a - auroc_b), float(low), float(high)


def best_label(
    aurocs: Mapping[tuple[str, int, str], float], labels: Sequence[str], seed: int
) -> tuple[str | None, str]:
    """Of `labels`, the one with the highest validation AUROC at `seed` (train if no probe
    has a validation score), and the split it was chosen on. Ties: the first label."""
    for split in ("val", "train"):
        scored = [
            (aurocs[(lab, seed, split)], lab) for lab in labels if (lab, seed, split) in aurocs
        ]
        if scored:
            return max(scored, key=lambda t: t[0])[1], split
    return None, ""
