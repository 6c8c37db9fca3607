"""Architecture registry: name -> SAE subclass."""

from __future__ import annotations

from typing import Any

from saeprobe.errors import ConfigError
from saeprobe.sae.base import SAE
from saeprobe.sae.config import SAEConfig, build_config

_REGISTRY: dict[str, type[SAE]] = {}


def register(cls: type[SAE]) -> type[SAE]:
    """Class decorator that makes an architecture available by `cls.architecture`."""
    if cls.architecture in _REGISTRY:
        raise ValueError(f"architecture {cls.architecture!r} registered twice")
    _REGISTRY[cls.architecture] = cls
    return cls


def architectures() -> list[str]:
    return sorted(_REGISTRY)


def get_architecture(name: str) -> type[SAE]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown SAE architecture {name!r}; choose one of: {', '.join(architectures())}"
        ) from None


def make_config(data: dict[str, Any]) -> SAEConfig:
    """Validate a config dict (which must name its `architecture`)."""
    if "architecture" not in data:
        raise ConfigError(
            f"SAE config has no 'architecture'; set it to one of: {', '.join(architectures())}"
        )
    cls = get_architecture(data["architecture"])
    return build_config(cls.config_class, data, what=f"{data['architecture']} SAE config")


def create_sae(cfg: SAEConfig | dict[str, Any], seed: int | None = None) -> SAE:
    if isinstance(cfg, dict):
        cfg = make_config(cfg)
    gen = torch_generator(seed)
    return get_architecture(cfg.architecture)(cfg, generator=gen)


def torch_generator(seed: int | None):
    import torch

    if seed is None:
        return None
    return torch.Generator().manual_seed(seed)
