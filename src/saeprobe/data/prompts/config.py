"""The dataset configuration: a pydantic schema, loadable from YAML, with one-line errors.

```yaml
seed: 0                     # every shuffle and random choice derives from it
normalize: true             # strip formatting cues from base prompts (see normalize.py)
include_base: true          # also keep each untransformed base prompt as a row
val_fraction: 0.2           # of the train-role base prompts left after the OOD reservation
ood_fraction: 0.2           # of train-role base prompts eligible for an OOD-only transform
innocuous_on_harmless: false
jailbreaks_on_harmless: false   # also wrap harmless prompts (label stays 0): wrappers stop being a cue
sources:
  - {name: harmbench, kind: harmbench, path: [a.csv, b.csv], standard_only: true}
  - {name: alpaca, kind: alpaca, path: alpaca.json, limit: 600}
  - {name: advbench, kind: advbench, path: advbench.csv, role: ood}
  - {name: mine, kind: jsonl, path: x.jsonl, text_field: prompt, label_field: is_harmful}
templates: {aim: jailbreaks/aim.txt}
transforms:
  train: [aim, roleplay, how_many_words, {name: ignore_one_instruction, fraction: 0.5}]
  ood: [refusal_suppression, all_caps]
```

Paths are used as written, so relative ones resolve against the working directory (the
repository root when run as documented).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from saeprobe.data.prompts.transforms import BUILTINS
from saeprobe.sae.config import build_config
from saeprobe.yaml_config import load_yaml_config

Kind = Literal[
    "harmbench", "advbench", "alpaca", "xstest", "orbench", "jsonl", "csv", "hf", "builtin"
]

DEFAULT_TEXT_FIELD = {
    "harmbench": "Behavior",
    "advbench": "goal",
    "alpaca": "instruction",
    "xstest": "prompt",
    "orbench": "prompt",
    "jsonl": "text",
    "csv": "text",
    "hf": "text",
}
# Kinds whose every row has a known class unless the config says otherwise.
DEFAULT_LABEL = {
    "harmbench": "harmful",
    "advbench": "harmful",
    "alpaca": "harmless",
    "orbench": "harmless",  # OR-Bench's "seemingly toxic" prompts are harmless by construction
}


class SourceConfig(BaseModel):
    """One prompt source. Labels come from `label` (whole source) or `label_field` (per row)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="written to each row's source")
    kind: Kind
    path: str | list[str] | None = Field(
        None, description="file(s); for kind hf, hf:NAME[:SPLIT]; unused for builtin"
    )
    label: Literal["harmful", "harmless"] | None = None
    text_field: str | None = None
    label_field: str | None = None
    positive_values: list[str] | None = Field(
        None, description="label_field values that mean harmful (others mean harmless)"
    )
    positive_prefix: str | None = Field(
        None, description="label_field values starting with this mean harmful (XSTest: contrast_)"
    )
    standard_only: bool | None = Field(
        None, description="harmbench only: keep FunctionalCategory == standard (default true)"
    )
    limit: int | None = Field(None, gt=0, description="keep the first N after a seeded shuffle")
    role: Literal["train", "ood"] = "train"

    @field_validator("positive_values", mode="before")
    @classmethod
    def _values_as_strings(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [str(x).lower() if isinstance(x, bool) else str(x) for x in v]
        return v

    @model_validator(mode="after")
    def _kind_rules(self) -> SourceConfig:
        who = f"source {self.name!r} (kind {self.kind})"
        if self.kind == "builtin":
            if self.label is None:
                raise ValueError(f"{who} needs label: harmful or harmless, to pick the set")
            if self.path is not None or self.text_field or self.label_field:
                raise ValueError(f"{who} takes no path, text_field or label_field")
            return self
        if not self.path:
            raise ValueError(f"{who} needs a path")
        if self.kind == "hf" and not isinstance(self.path, str):
            raise ValueError(f"{who} takes one path, hf:NAME[:SPLIT]")
        if self.standard_only is not None and self.kind != "harmbench":
            raise ValueError(f"{who}: standard_only applies to harmbench only; remove it")
        if self.kind == "harmbench" and self.standard_only is None:
            self.standard_only = True
        if self.text_field is None:
            self.text_field = DEFAULT_TEXT_FIELD[self.kind]
        if self.label is not None and self.label_field is not None:
            raise ValueError(f"{who} sets both label and label_field; keep one")
        if self.kind == "xstest" and self.label is None and self.label_field is None:
            self.label_field = "type"
            if self.positive_values is None and self.positive_prefix is None:
                self.positive_prefix = "contrast_"
        if self.label is None and self.label_field is None:
            if self.kind not in DEFAULT_LABEL:
                raise ValueError(f"{who} needs label: harmful|harmless, or a label_field")
            self.label = DEFAULT_LABEL[self.kind]  # type: ignore[assignment]
        if self.label_field is None and (self.positive_values or self.positive_prefix):
            raise ValueError(f"{who}: positive_values/positive_prefix need a label_field")
        return self

    @property
    def paths(self) -> list[Path]:
        if self.path is None:
            return []
        return [Path(p) for p in ([self.path] if isinstance(self.path, str) else self.path)]


class TransformSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    fraction: float = Field(
        1.0, gt=0, le=1, description="apply to this seeded fraction of eligible base prompts"
    )


class TransformsConfig(BaseModel):
    """Transformations seen in train/val, and those held out to appear only in the OOD split."""

    model_config = ConfigDict(extra="forbid")

    train: list[TransformSpec] = Field(default_factory=list)
    ood: list[TransformSpec] = Field(default_factory=list)

    @field_validator("train", "ood", mode="before")
    @classmethod
    def _names_to_specs(cls, v: Any) -> Any:
        if v is None:
            return []
        if isinstance(v, list):
            return [{"name": x} if isinstance(x, str) else x for x in v]
        return v

    @model_validator(mode="after")
    def _disjoint(self) -> TransformsConfig:
        for where, specs in (("train", self.train), ("ood", self.ood)):
            names = [s.name for s in specs]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"transforms.{where} lists {', '.join(dupes)} twice")
        both = sorted({s.name for s in self.train} & {s.name for s in self.ood})
        if both:
            raise ValueError(
                f"{', '.join(both)} in both transforms.train and transforms.ood; an OOD "
                "transformation must be held out of training"
            )
        return self


class DatasetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[SourceConfig] = Field(min_length=1)
    templates: dict[str, str] = Field(
        default_factory=dict, description="jailbreak wrapper name -> template file with {prompt}"
    )
    transforms: TransformsConfig = Field(default_factory=TransformsConfig)
    include_base: bool = Field(True, description="keep untransformed base prompts as rows")
    normalize: bool = Field(True, description="strip formatting cues from base prompts")
    val_fraction: float = Field(0.2, ge=0, lt=1)
    ood_fraction: float = Field(0.2, ge=0, lt=1)
    innocuous_on_harmless: bool = Field(
        False, description="also apply innocuous rewrites to harmless prompts (label stays 0)"
    )
    jailbreaks_on_harmless: bool = Field(
        False,
        description="also wrap harmless prompts in the jailbreak wrappers (label stays 0), so "
        "that a wrapper's style and length occur in both classes",
    )
    seed: int = 0

    @model_validator(mode="after")
    def _names(self) -> DatasetConfig:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; {', '.join(dupes)} repeats")
        shadow = sorted(set(self.templates) & set(BUILTINS))
        if shadow:
            raise ValueError(
                f"template name {', '.join(shadow)} shadows a built-in transformation; rename it"
            )
        for where, specs in (("train", self.transforms.train), ("ood", self.transforms.ood)):
            for spec in specs:
                if spec.name not in BUILTINS and spec.name not in self.templates:
                    raise ValueError(
                        f"transforms.{where}: unknown transformation {spec.name!r}; use a "
                        f"built-in ({', '.join(sorted(BUILTINS))}) or add it under templates:"
                    )
        return self


def dataset_config(data: dict[str, Any]) -> DatasetConfig:
    return build_config(DatasetConfig, data, "dataset config")


def load_dataset_config(path: str | Path | None) -> DatasetConfig:
    """Read a YAML dataset config; None gives the offline default (`default_dataset_config`)."""
    if path is None:
        from saeprobe.data.prompts.default_prompts import default_dataset_config

        return default_dataset_config()
    return dataset_config(load_yaml_config(path))


def resolve_dataset_config(value: str | Path | dict[str, Any] | None) -> DatasetConfig:
    """A dataset config given as a YAML path, an inline mapping, or None (the offline default)."""
    if isinstance(value, dict):
        return dataset_config(value)
    return load_dataset_config(value)
