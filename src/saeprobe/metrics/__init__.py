"""Metrics for SAEs: reconstruction, sparsity, firing frequency, planted-feature recovery."""

from saeprobe.metrics.frequency import HIGH_FREQUENCY, FrequencySummary, summarize_frequencies
from saeprobe.metrics.reconstruction import ReconstructionAccumulator, evaluate_on_tensor
from saeprobe.metrics.recovery import feature_recovery

__all__ = [
    "HIGH_FREQUENCY",
    "FrequencySummary",
    "ReconstructionAccumulator",
    "evaluate_on_tensor",
    "feature_recovery",
    "summarize_frequencies",
]
