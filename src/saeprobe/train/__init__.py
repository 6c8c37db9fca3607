"""Training: one architecture-agnostic trainer, schedules, checkpoints and activation sources."""

from saeprobe.train.config import RunSpec, TrainConfig
from saeprobe.train.source import BatchSource, TensorSource
from saeprobe.train.trainer import Trainer, TrainingDiverged, TrainResult, estimate_scale

__all__ = [
    "BatchSource",
    "RunSpec",
    "TensorSource",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "estimate_scale",
]
