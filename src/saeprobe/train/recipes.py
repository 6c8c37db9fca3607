"""Named training recipes: sets of settings chosen together, applied under the user's own.

A recipe fills in only the settings the user did not give (on the command line, in the config's
`sae:` / `train:` sections or in a sweep's grid entry); everything it sets is recorded, and saved
SAEs carry that record in cfg.json (`metadata.recipe`). Our own defaults stay the default: no
recipe is applied unless one is named. docs/recipes.md sets the values beside ours.

`gemma-scope` is the JumpReLU recipe of Gemma Scope (Lieberum et al. 2024, sections 2-3), under
which the study compared the quadratic-frequency penalty. Its warm-ups are literal step counts
(1,000 for the learning rate, 10,000 for the sparsity coefficient), so a run shorter than that
never reaches the full value; `check_run_length` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from saeprobe.errors import ConfigError
from saeprobe.sae.registry import get_architecture


@dataclass(frozen=True)
class Recipe:
    description: str
    train: dict[str, Any]
    sae: dict[str, Any]  # for every architecture that has the field
    sae_by_architecture: dict[str, dict[str, Any]] = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {
    "gemma-scope": Recipe(
        description="Gemma Scope's JumpReLU recipe: Adam (0, 0.999), lr 7e-5 with a cosine "
        "warm-up from 0.1 lr over 1,000 steps and no decay, sparsity coefficient warmed up "
        "from 0 over 10,000 steps, no gradient clipping, W_enc = W_dec^T, zero biases; for "
        "JumpReLU also bandwidth 0.001, threshold 0.001 and no AuxK",
        train={
            "lr": 7e-5,
            "adam_betas": (0.0, 0.999),
            "adam_eps": 1e-8,
            "lr_warmup": "cosine",
            "lr_warmup_steps": 1_000,
            "lr_decay_steps": 0,
            "sparsity_warmup_steps": 10_000,
            "b_dec_init": "zero",
            "max_grad_norm": None,  # not part of the recipe as reconstructed: keep it unclipped
        },
        sae={"encoder_init_scale": 1.0},
        sae_by_architecture={
            "jumprelu": {"bandwidth": 0.001, "threshold_init": 0.001, "aux_coefficient": 0.0},
        },
    ),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(
            f"unknown recipe {name!r}; choose one of: {', '.join(sorted(RECIPES))}"
        ) from None


def recipe_help() -> str:
    names = ", ".join(sorted(RECIPES))
    return (
        f"preset of training settings ({names}); it sets only what you did not set yourself "
        "(options, config sae:/train:), and cfg.json records what it set"
    )


def sae_values(name: str | None, architecture: str, given: dict[str, Any]) -> dict[str, Any]:
    """The SAE settings recipe `name` adds to `given` (the user's) for `architecture`."""
    if name is None:
        return {}
    recipe = get_recipe(name)
    fields = get_architecture(architecture).config_class.model_fields
    wanted = recipe.sae | recipe.sae_by_architecture.get(architecture, {})
    return {k: v for k, v in wanted.items() if k in fields and k not in given}


def train_values(name: str | None, given: dict[str, Any]) -> dict[str, Any]:
    """The training settings recipe `name` adds to `given` (the user's)."""
    if name is None:
        return {}
    return {k: v for k, v in get_recipe(name).train.items() if k not in given}


def record(name: str | None, sae: dict[str, Any], train: dict[str, Any]) -> dict[str, Any] | None:
    """What to store in cfg.json's metadata about the recipe (None without one)."""
    if name is None:
        return None
    as_json = {k: list(v) if isinstance(v, tuple) else v for k, v in train.items()}
    return {"name": name, "sae": dict(sae), "train": as_json}


def check_run_length(name: str | None, set_train: dict[str, Any], steps: int) -> list[str]:
    """One-line warnings for recipe warm-ups longer than the run (they are kept literal)."""
    if name is None:
        return []
    out = []
    for key, what in (
        ("lr_warmup_steps", "learning rate"),
        ("sparsity_warmup_steps", "sparsity coefficient"),
    ):
        if key in set_train and set_train[key] > steps:
            out.append(
                f"warning: recipe {name}'s {what} warm-up ({set_train[key]} steps) is longer than "
                f"this run ({steps} steps), so the {what} never reaches its full value; set "
                f"{key} to shorten it"
            )
    return out
