"""P4, the reconstruction probe: the dense probe trained on the SAE reconstruction.

Same classifier and CV procedure as `DenseProbe`, fed the pooled reconstruction R = decode(Z)
instead of the residual X. The gap "dense AUROC - reconstruction AUROC" measures how much task
information the SAE loses (the study's reconstruction-delta table).
"""

from __future__ import annotations

from saeprobe.probes.dense import DenseProbe

__all__ = ["ReconstructionProbe"]


class ReconstructionProbe(DenseProbe):
    """`fit(R_train, y_train, base_id_train)`, then `decision_function(R)` on any split."""

    name = "reconstruction"
