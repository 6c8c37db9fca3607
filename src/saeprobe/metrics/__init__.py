"""Metrics for SAEs: reconstruction, sparsity, firing frequency, planted-feature recovery, and
the downstream effect of splicing an SAE into a model (LM loss, embedding cosine)."""

from saeprobe.metrics.frequency import HIGH_FREQUENCY, FrequencySummary, summarize_frequencies
from saeprobe.metrics.lm_effect import LMEffectAccumulator, lm_effect
from saeprobe.metrics.reconstruction import ReconstructionAccumulator, evaluate_on_tensor
from saeprobe.metrics.recovery import feature_recovery

__all__ = [
    "HIGH_FREQUENCY",
    "FrequencySummary",
    "LMEffectAccumulator",
    "ReconstructionAccumulator",
    "evaluate_on_tensor",
    "feature_recovery",
    "lm_effect",
    "summarize_frequencies",
]
