"""SAE architectures behind one interface, with a registry by name.

Importing this package registers every built-in architecture.
"""

from saeprobe.sae import batchtopk, gated, jumprelu, relu, topk  # noqa: F401  (registration)
from saeprobe.sae.base import SAE, StepContext, TrainOutput
from saeprobe.sae.config import SAEConfig
from saeprobe.sae.registry import architectures, create_sae, get_architecture, make_config

__all__ = [
    "SAE",
    "SAEConfig",
    "StepContext",
    "TrainOutput",
    "architectures",
    "create_sae",
    "get_architecture",
    "make_config",
]
