"""P1, the dense probe: logistic regression on the pooled residual stream.

Features are standardised with training statistics; C comes from grouped CV on the training
split (`saeprobe.probes.cv`); the final model is refit on the whole training split.
"""

from __future__ import annotations

from saeprobe.probes.linear import StandardizedLogistic

__all__ = ["DenseProbe"]


class DenseProbe(StandardizedLogistic):
    """`fit(X_train, y_train, base_id_train)`, then `decision_function(X)` on any split."""

    name = "dense"
