"""The PROBES stage: does an SAE help detect harmful intent, in and out of distribution?

Inputs are pooled per prompt (`ProbeData`, `SaeFeatures`); `run_probe_suite` fits every probe
type on the training split only and scores train / val / ood:

- `dense`: logistic regression on the standardised residual, C by grouped CV on train;
- `diff_of_means`: the class-mean difference direction;
- `one_sparse`: the single latent with the best training AUROC (signed);
- `k_sparse`: k latents chosen by mean difference, normalised mean difference or an L1 path,
  then the dense probe's classifier on them;
- `reconstruction`: the dense probe on the SAE reconstruction;
- `random_latents`: k random firing latents, the control for `k_sparse`;
- per-token probes (`saeprobe.probes.per_token`): max_of_logits, softmax, attention,
  multimax, ema, rolling_mean, fitted once on per-token activations and passed to the suite as
  `scored` probes.

Metrics: AUROC with bootstrap intervals, TPR at 1 % FPR with the split's own and with the
validation threshold, and paired comparisons between probes (`saeprobe.probes.comparisons`).
"""

from saeprobe.probes.data import SPLITS, ProbeData, SaeFeatures
from saeprobe.probes.dense import DenseProbe
from saeprobe.probes.diff_of_means import DiffOfMeansProbe
from saeprobe.probes.k_sparse import KSparseProbe
from saeprobe.probes.one_sparse import OneSparseProbe
from saeprobe.probes.random_latents import RandomLatentsProbe
from saeprobe.probes.reconstruction import ReconstructionProbe
from saeprobe.probes.selection import SELECTIONS
from saeprobe.probes.suite import (
    DEFAULT_KS,
    PER_TOKEN_PROBES,
    PROBE_TYPES,
    ProbeResults,
    run_probe_suite,
    write_results,
)

__all__ = [
    "DEFAULT_KS",
    "PER_TOKEN_PROBES",
    "PROBE_TYPES",
    "SELECTIONS",
    "SPLITS",
    "DenseProbe",
    "DiffOfMeansProbe",
    "KSparseProbe",
    "OneSparseProbe",
    "ProbeData",
    "ProbeResults",
    "RandomLatentsProbe",
    "ReconstructionProbe",
    "SaeFeatures",
    "run_probe_suite",
    "write_results",
]
