"""Deduplication and the leak-free split into train / val / ood.

The guarantee, checked by `check_no_leakage` on every build:

    every base prompt (base_id), and every exact text, occurs in exactly one split.

How it holds:

1. Base prompts are deduplicated across all sources on a case- and whitespace-insensitive key
   (`dedup_key`), so one request cannot enter twice under two base ids.
2. The split is made over base prompts, never over rows: a base prompt and all its
   transformations share one split. Train-role sources are split per stratum (source, label)
   after a seeded shuffle: first `ood_fraction` of the prompts that some OOD-only transformation
   can apply to are *reserved for OOD*; then `val_fraction` of the rest go to val, and the
   remainder to train. OOD-role sources go wholly to ood.
3. OOD-only transformations are applied to OOD-source prompts and to the reserved prompts only.
   Reserved prompts appear in ood *only transformed*; their untransformed text is in no split.
   So the probe never sees, in training, a request that it is later tested on in held-out form.
4. A last pass drops any row whose exact text already occurred (earlier split wins), which
   catches coincidences such as a source that itself contains a rewritten prompt.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence

from saeprobe.data.prompts.examples import HARMFUL, LABEL_NAMES, SPLITS, BasePrompt, Example
from saeprobe.errors import DataError


def dedup_key(text: str) -> str:
    """Case- and whitespace-insensitive identity of a prompt."""
    return " ".join(text.split()).casefold()


def make_base_id(source: str, text: str) -> str:
    """Stable id: the source name and a hash of the dedup key (independent of file order)."""
    return f"{source}:{hashlib.sha1(dedup_key(text).encode()).hexdigest()[:12]}"


def _count(fraction: float, n: int) -> int:
    return min(n, int(fraction * n + 0.5))


def assign_splits(
    bases: Sequence[BasePrompt],
    val_fraction: float,
    ood_fraction: float,
    seed: int,
    reserve_labels: Iterable[int] = (HARMFUL,),
) -> dict[str, str]:
    """Map base_id -> split; see the module docstring for the rules."""
    reserve = set(reserve_labels)
    out: dict[str, str] = {}
    strata: dict[tuple[str, int], list[BasePrompt]] = {}
    for b in bases:
        if b.role == "ood":
            out[b.base_id] = "ood"
        else:
            strata.setdefault((b.source, b.label), []).append(b)
    for (source, label), members in sorted(strata.items()):
        members = sorted(members, key=lambda b: b.base_id)
        random.Random(f"{seed}|split|{source}|{label}").shuffle(members)
        n_ood = _count(ood_fraction, len(members)) if label in reserve else 0
        n_val = _count(val_fraction, len(members) - n_ood)
        for i, b in enumerate(members):
            out[b.base_id] = "ood" if i < n_ood else "val" if i < n_ood + n_val else "train"
    return out


def drop_repeated_texts(rows: Sequence[Example]) -> tuple[list[Example], int]:
    """Keep the first row of every exact text, scanning splits in train, val, ood order."""
    order = {s: i for i, s in enumerate(SPLITS)}
    seen: set[str] = set()
    kept = []
    for row in sorted(rows, key=lambda r: order[r.split]):  # stable: keeps order within split
        if row.text not in seen:
            seen.add(row.text)
            kept.append(row)
    return kept, len(rows) - len(kept)


def check_no_leakage(rows: Iterable[Example]) -> None:
    """Raise DataError if a base_id or an exact text occurs in more than one split."""
    where_id: dict[str, str] = {}
    where_text: dict[str, str] = {}
    for row in rows:
        for key, table, what in (
            (row.base_id, where_id, "base prompt"),
            (row.text, where_text, "text"),
        ):
            other = table.setdefault(key, row.split)
            if other != row.split:
                shown = key if len(key) <= 60 else key[:57] + "..."
                raise DataError(
                    f"{what} {shown!r} is in both {other} and {row.split}; this is a leak, "
                    "report it with the dataset config"
                )


_FIX = {
    "train": "add a train-role source with {missing} prompts or lower val_fraction/ood_fraction",
    "val": "add train-role {missing} prompts or raise val_fraction (or set it to 0)",
    "ood": "add an OOD-role source with {missing} prompts or an OOD-only transformation that "
    "produces them (innocuous rewrites give harmless rows, wrappers harmful ones)",
}


def check_classes(rows: Iterable[Example]) -> None:
    """Every non-empty split needs both classes (AUROC is undefined otherwise); train non-empty."""
    labels: dict[str, set[int]] = {s: set() for s in SPLITS}
    counts = dict.fromkeys(SPLITS, 0)
    for row in rows:
        labels[row.split].add(row.label)
        counts[row.split] += 1
    if counts["train"] == 0:
        raise DataError("the train split is empty; add train-role sources or lower the fractions")
    for split in SPLITS:
        if counts[split] and len(labels[split]) == 1:
            (have,) = labels[split]
            missing = LABEL_NAMES[1 - have]
            raise DataError(
                f"split {split!r} has only {LABEL_NAMES[have]} rows ({counts[split]}); "
                + _FIX[split].format(missing=missing)
            )
