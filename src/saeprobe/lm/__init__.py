"""Language models: load any Hugging Face model, capture residual-stream layers, splice SAEs in."""

from saeprobe.lm.hooks import capture_layers, splice
from saeprobe.lm.models import ALIASES, DEFAULT_MODEL, LoadedModel, load_model

__all__ = ["ALIASES", "DEFAULT_MODEL", "LoadedModel", "capture_layers", "load_model", "splice"]
