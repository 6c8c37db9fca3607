"""Inputs of the probe stage: pooled features per split, and per-SAE latents/reconstructions.

Everything is keyed by split name ("train", "val", "ood"). Only "train" is required: probes are
fitted on it, and every other split present is only scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from saeprobe.errors import DataError

__all__ = ["SPLITS", "ProbeData", "SaeFeatures", "as_sae_features"]

SPLITS = ("train", "val", "ood")


@dataclass(frozen=True)
class ProbeData:
    """Pooled dense features, labels and per-row metadata, each a mapping split -> values.

    X[split]: float [n, d_model] pooled residual; y[split]: 0/1 [n] (1 = harmful);
    source/transform/base_id[split]: one entry per row. `base_id` ties a base prompt to all its
    transformations (grouped CV keeps them in one fold); `source` and `transform` label the OOD
    breakdown.
    """

    X: Mapping[str, np.ndarray]
    y: Mapping[str, np.ndarray]
    source: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    transform: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    base_id: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits present, in the canonical order train, val, ood."""
        return tuple(s for s in SPLITS if s in self.X)

    def validate(self) -> None:
        """DataError (one line, naming the fix) for anything the probe stage cannot use."""
        unknown = sorted(set(self.X) - set(SPLITS))
        if unknown:
            raise DataError(f"unknown split(s) {unknown} in X; use split names from {SPLITS}")
        if "train" not in self.X:
            raise DataError("X has no 'train' split; probes are fitted on it, so provide it")
        d_model = None
        for split in self.splits:
            x = _matrix(self.X[split], f"X[{split!r}]")
            if d_model is not None and x.shape[1] != d_model:
                raise DataError(
                    f"X[{split!r}] has {x.shape[1]} columns but X['train'] has {d_model}; "
                    "pool every split from the same model layer"
                )
            d_model = x.shape[1]
            n = x.shape[0]
            if split not in self.y:
                raise DataError(f"y has no {split!r} split; give labels for every split in X")
            y = np.asarray(self.y[split])
            if y.shape != (n,):
                raise DataError(
                    f"y[{split!r}] has shape {y.shape} but X[{split!r}] has {n} rows; "
                    "give one label per row"
                )
            if not np.isin(y, (0, 1)).all():
                raise DataError(f"y[{split!r}] must hold 0 or 1 only; map the classes to 0/1")
            for name, meta in (
                ("source", self.source),
                ("transform", self.transform),
                ("base_id", self.base_id),
            ):
                required = name == "base_id" and split == "train"
                required = required or (name != "base_id" and split == "ood")
                if split not in meta:
                    if required:
                        raise DataError(
                            f"{name} has no {split!r} split; give one {name} per {split} row"
                        )
                    continue
                if len(meta[split]) != n:
                    raise DataError(
                        f"{name}[{split!r}] has {len(meta[split])} entries for {n} rows; "
                        f"give one {name} per row"
                    )

    def base_id_overlap(self) -> dict[str, int]:
        """Per evaluation split, how many of its base_ids also occur in train.

        A shared base prompt means train and that split hold transformations of the same
        prompt; the suite records the count so such overlap is visible in the results.
        """
        train = {str(b) for b in self.base_id.get("train", ())}
        return {
            s: len({str(b) for b in self.base_id[s]} & train)
            for s in self.splits
            if s != "train" and s in self.base_id
        }


@dataclass(frozen=True)
class SaeFeatures:
    """One SAE's pooled latents Z[split] [n, d_sae] and reconstructions R[split] [n, d_model]."""

    Z: Mapping[str, np.ndarray]
    R: Mapping[str, np.ndarray]

    def validate(self, name: str, data: ProbeData) -> None:
        d_sae = None
        for split in data.splits:
            for what, arrays in (("Z", self.Z), ("R", self.R)):
                if split not in arrays:
                    raise DataError(
                        f"SAE {name!r} has no {what}[{split!r}]; encode every split of X with it"
                    )
            n, d_model = np.shape(data.X[split])
            z = _matrix(self.Z[split], f"Z[{name!r}][{split!r}]")
            r = _matrix(self.R[split], f"R[{name!r}][{split!r}]")
            if z.shape[0] != n or r.shape != (n, d_model):
                raise DataError(
                    f"SAE {name!r} split {split!r}: Z {z.shape} / R {r.shape} do not match "
                    f"X {(n, d_model)}; pool latents and reconstructions from the same prompts"
                )
            if d_sae is not None and z.shape[1] != d_sae:
                raise DataError(
                    f"SAE {name!r}: Z[{split!r}] has {z.shape[1]} latents, Z['train'] {d_sae}; "
                    "encode every split with the same SAE"
                )
            d_sae = z.shape[1]


def as_sae_features(value: SaeFeatures | Mapping[str, Any], name: str) -> SaeFeatures:
    """Accept a `SaeFeatures` or a mapping with keys "Z" and "R"."""
    if isinstance(value, SaeFeatures):
        return value
    if isinstance(value, Mapping) and "Z" in value and "R" in value:
        return SaeFeatures(Z=value["Z"], R=value["R"])
    raise DataError(
        f"SAE {name!r}: expected SaeFeatures or a mapping with 'Z' and 'R'; "
        "pass {'Z': {split: latents}, 'R': {split: reconstructions}}"
    )


def _matrix(value: Any, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise DataError(f"{what} must be a non-empty 2-D array [n, d], got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise DataError(f"{what} has NaN/inf or non-numeric values; fix the pooled features")
    return arr
