"""Typed SAE configurations.

One pydantic model per architecture (declared next to the architecture). The fields hold both the
inference shape (d_in, d_sae, k) and the training hyper-parameters of the architecture's loss,
because an architecture owns its loss terms. All loss hyper-parameters are in *normalised* input
units: the trainer scales activations so that E||x||^2 = 1 before the SAE sees them.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from saeprobe.errors import ConfigError


class SAEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    architecture: str
    d_in: int = Field(gt=0, description="width of the activations the SAE reads")
    d_sae: int = Field(gt=0, description="number of latents")
    apply_b_dec_to_input: bool = Field(
        True, description="subtract b_dec from the input before encoding (pre-encoder bias)"
    )
    encoder_init_scale: float = Field(
        0.1,
        gt=0,
        description="W_enc starts as W_dec^T times this; small values markedly help L1 and "
        "JumpReLU recover features (see docs/toy.md)",
    )


C = TypeVar("C", bound=BaseModel)


def format_validation_error(err: ValidationError, what: str) -> str:
    """Squash a pydantic error into one line: `invalid <what>: field: message; field: message`."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "value"
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc != "value" else msg)
    return f"invalid {what}: " + "; ".join(parts)


def build_config(cls: type[C], data: dict[str, Any], what: str = "configuration") -> C:
    """Validate `data` into `cls`, turning pydantic's multi-line errors into a ConfigError."""
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, what)) from None
