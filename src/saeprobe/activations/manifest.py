"""What a store holds: the manifest of a finished harvest and each rank's resumable state."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from saeprobe.errors import DataError
from saeprobe.io_utils import atomic_write_json

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class ShardRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stem: str
    rank: int
    n_tokens: int
    files: dict[str, str] = Field(description="relative path -> sha256 of the file")


class NormSums(BaseModel):
    """Float64 sums over harvested tokens, per layer: the normalisation estimate's raw material."""

    model_config = ConfigDict(extra="forbid")

    n: int = 0
    sum_sq: dict[str, float] = Field(default_factory=dict)
    sum_norm: dict[str, float] = Field(default_factory=dict)

    def add(self, other: NormSums) -> NormSums:
        keys = set(self.sum_sq) | set(other.sum_sq)
        return NormSums(
            n=self.n + other.n,
            sum_sq={k: self.sum_sq.get(k, 0.0) + other.sum_sq.get(k, 0.0) for k in keys},
            sum_norm={k: self.sum_norm.get(k, 0.0) + other.sum_norm.get(k, 0.0) for k in keys},
        )


class RankState(BaseModel):
    """Everything a rank needs to resume exactly: shards written and where the next one starts."""

    model_config = ConfigDict(extra="forbid")

    fingerprint: dict[str, Any]
    shards: list[ShardRecord] = Field(default_factory=list)
    next_batch: int = 0  # first batch with tokens not yet in a shard...
    skip: int = 0  # ...and how many of its kept tokens are already written
    n_tokens: int = 0
    n_outliers: int = 0
    norms: NormSums = Field(default_factory=NormSums)
    done: bool = False


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    model: str
    model_class: str
    model_weights_sha256: str
    is_causal_lm: bool
    tokenizer: str
    layers: list[int]
    d_model: int
    dtype: str
    n_tokens: int
    data: str
    field: str | None
    mix: list[dict[str, Any]] = Field(default_factory=list)
    context: int
    chat: bool
    data_format: str = Field(
        "plain",
        description="how the main data was formatted: 'plain' text, each text as a chat "
        "'user_turn' (--chat, the Gemma Scope IT recipe), or chat 'messages' (user and "
        "assistant text of conversations, e.g. rollouts)",
    )
    chat_template: str | None = Field(
        description="'model' or 'fallback' when any data was chat-formatted, else null"
    )
    autocast: bool = Field(False, description="the model ran under bf16 autocast")
    batch_size: int
    shard_tokens: int
    max_tokens: int | None
    outlier_factor: float | None
    n_outliers_excluded: int
    world_size: int
    token_metadata: dict[str, str]
    normalization_scale: dict[str, float] = Field(
        description="per layer sqrt(E||x||^2): dividing by it gives E||x||^2 = 1"
    )
    mean_norm: dict[str, float]
    shards: list[ShardRecord]
    saeprobe_version: str


def state_path(out: Path, rank: int) -> Path:
    return out / "state" / f"rank{rank:02d}.json"


def load_model_file(path: Path, cls: type[BaseModel], fix: str):
    try:
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise DataError(f"{path} not found; {fix}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError):
        raise DataError(f"{path} is corrupt or from another version; {fix}") from None


def load_manifest(store: Path) -> Manifest:
    path = store / MANIFEST
    if not path.is_file():
        hint = (
            "the harvest did not finish; finish it with saeprobe harvest ... --resume"
            if (store / "state").is_dir()
            else "point --acts at a directory written by saeprobe harvest"
        )
        raise DataError(f"{store} has no {MANIFEST}: {hint}")
    return load_model_file(path, Manifest, "re-run the harvest into a fresh --out")


def save_state(out: Path, rank: int, state: RankState) -> None:
    atomic_write_json(state_path(out, rank), state.model_dump(mode="json"))


def scale_from(norms: NormSums) -> tuple[dict[str, float], dict[str, float]]:
    n = max(norms.n, 1)
    scale = {k: math.sqrt(v / n) for k, v in norms.sum_sq.items()}
    mean = {k: v / n for k, v in norms.sum_norm.items()}
    return scale, mean
