"""The two record types of the dataset stage.

A `BasePrompt` is one request as read from a source (after normalisation and deduplication). An
`Example` is one row of the finished dataset: a base prompt, possibly transformed, with its label
and split. Every example keeps the `base_id` of the prompt it came from, which is what the split
is grouped by: a base prompt and all of its transformations land in the same split, so a probe is
never evaluated on a rewording of a request it was trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

HARMFUL = 1
HARMLESS = 0
LABEL_NAMES = {HARMFUL: "harmful", HARMLESS: "harmless"}
LABELS = {name: value for value, name in LABEL_NAMES.items()}

Role = Literal["train", "ood"]
SPLITS = ("train", "val", "ood")
NO_TRANSFORM = "none"


@dataclass(frozen=True)
class BasePrompt:
    """One deduplicated request from a source; `role` says whether it feeds train/val or OOD."""

    text: str
    label: int
    source: str
    base_id: str
    role: Role = "train"


@dataclass(frozen=True)
class Example:
    """One dataset row. `transform` is "none" for an untransformed base prompt."""

    text: str
    label: int
    source: str
    transform: str
    split: str
    base_id: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
