"""Build the harmful-intent probing dataset: sources -> base prompts -> splits -> rows -> files.

`build_dataset(cfg, out)` writes

- `out/dataset.jsonl`: one row per line, `{text, label, source, transform, split, base_id}`,
  label 1 = harmful, transform "none" for an untransformed base prompt; splits in the order
  train, val, ood, each in a seeded shuffled order;
- `out/summary.json`: class balance per split and per (split, source, transform), per-source
  reading statistics (duplicates, normalisation), and the config used;

both atomically, and byte-identical for the same config and inputs. `load_dataset_dir(out)`
reads the rows back.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saeprobe.data.prompts.config import DatasetConfig
from saeprobe.data.prompts.examples import (
    HARMFUL,
    HARMLESS,
    NO_TRANSFORM,
    SPLITS,
    BasePrompt,
    Example,
)
from saeprobe.data.prompts.normalize import normalize_prompt
from saeprobe.data.prompts.sources import load_source
from saeprobe.data.prompts.split import (
    assign_splits,
    check_classes,
    check_no_leakage,
    dedup_key,
    drop_repeated_texts,
    make_base_id,
)
from saeprobe.data.prompts.transforms import Transform, resolve_transform, rng_for
from saeprobe.errors import DataError, FormatError
from saeprobe.io_utils import atomic_write, atomic_write_json

DATASET_FILE = "dataset.jsonl"
SUMMARY_FILE = "summary.json"
FIELDS = ("text", "label", "source", "transform", "split", "base_id")


@dataclass
class DatasetSummary:
    """What was built: row counts per split and class, and a printable balance table."""

    n_rows: int
    splits: dict[str, dict[str, int]]
    table: str
    dataset_path: Path
    summary_path: Path
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)


# --- base prompts ----------------------------------------------------------------------------


def collect_base_prompts(cfg: DatasetConfig) -> tuple[list[BasePrompt], dict[str, dict[str, Any]]]:
    """Read, normalise, deduplicate (across sources, in config order) and limit every source.

    The limit is applied after deduplication, so a source with `limit: N` gives N distinct new
    prompts when it has them, and a second source reading the same file gets different ones.
    """
    seen: dict[str, int] = {}  # dedup key -> label of the prompt kept
    bases: list[BasePrompt] = []
    stats: dict[str, dict[str, Any]] = {}
    for src in cfg.sources:
        raw = load_source(src)
        fresh: list[tuple[str, int]] = []
        duplicates = conflicts = changed = 0
        q_before = q_after = p_before = p_after = 0
        local: set[str] = set()
        for item in raw:
            text = normalize_prompt(item.text) if cfg.normalize else item.text.strip()
            if not text:
                raise DataError(
                    f"{item.where} ({src.name}) is empty after normalisation ({item.text!r}); "
                    "remove the row or set normalize: false"
                )
            q_before += item.text.rstrip().endswith("?")
            q_after += text.endswith("?")
            p_before += item.text.rstrip().endswith(".")
            p_after += text.endswith(".")
            changed += text != item.text
            key = dedup_key(text)
            if key in seen or key in local:
                duplicates += 1
                conflicts += key in seen and seen[key] != item.label
                continue
            local.add(key)
            fresh.append((text, item.label))
        if src.limit is not None and len(fresh) > src.limit:
            order = list(range(len(fresh)))
            random.Random(f"{cfg.seed}|limit|{src.name}").shuffle(order)
            fresh = [fresh[i] for i in sorted(order[: src.limit])]
        for text, label in fresh:
            seen[dedup_key(text)] = label
            bases.append(BasePrompt(text, label, src.name, make_base_id(src.name, text), src.role))
        labels = Counter(label for _, label in fresh)
        stats[src.name] = {
            "kind": src.kind,
            "role": src.role,
            "read": len(raw),
            "duplicates_dropped": duplicates,
            "duplicate_label_conflicts": conflicts,
            "kept": len(fresh),
            "harmful": labels[HARMFUL],
            "harmless": labels[HARMLESS],
            "changed_by_normalisation": changed,
            "ending_in_question_mark_before": q_before,
            "ending_in_question_mark_after": q_after,
            "ending_in_period_before": p_before,
            "ending_in_period_after": p_after,
        }
    return bases, stats


# --- rows ------------------------------------------------------------------------------------


def _select(
    bases: list[BasePrompt], t: Transform, fraction: float, cfg: DatasetConfig, split: str
) -> list[BasePrompt]:
    eligible = sorted(
        (
            b
            for b in bases
            if t.applies_to(b.label, cfg.innocuous_on_harmless, cfg.jailbreaks_on_harmless)
        ),
        key=lambda b: b.base_id,
    )
    if fraction >= 1:
        return eligible
    random.Random(f"{cfg.seed}|fraction|{t.name}|{split}").shuffle(eligible)
    keep = eligible[: int(fraction * len(eligible) + 0.5)]
    return sorted(keep, key=lambda b: b.base_id)


def _transformed(
    bases: list[BasePrompt],
    plan: list[tuple[Transform, float]],
    cfg: DatasetConfig,
    split: str,
) -> list[Example]:
    rows = []
    for t, fraction in plan:
        for b in _select(bases, t, fraction, cfg, split):
            text = t(b.text, rng_for(cfg.seed, t.name, b.base_id))
            rows.append(Example(text, t.row_label(b.label), b.source, t.name, split, b.base_id))
    return rows


def expand(
    bases: list[BasePrompt],
    assignment: dict[str, str],
    train_plan: list[tuple[Transform, float]],
    ood_plan: list[tuple[Transform, float]],
    cfg: DatasetConfig,
) -> list[Example]:
    """Turn base prompts into rows: train/val get base + training transforms; ood gets OOD-source
    prompts and OOD-only transforms of OOD-source and reserved prompts (never their plain text)."""
    groups: dict[str, list[BasePrompt]] = {s: [] for s in SPLITS}
    for b in sorted(bases, key=lambda b: b.base_id):
        groups[assignment[b.base_id]].append(b)
    rows: list[Example] = []
    for split in SPLITS:
        members = groups[split]
        if cfg.include_base:
            for b in members:
                if split != "ood" or b.role == "ood":  # reserved prompts appear transformed only
                    rows.append(Example(b.text, b.label, b.source, NO_TRANSFORM, split, b.base_id))
        rows += _transformed(members, ood_plan if split == "ood" else train_plan, cfg, split)
    return rows


def _reserve_labels(ood_plan: list[tuple[Transform, float]], cfg: DatasetConfig) -> set[int]:
    """Labels of train-role prompts worth reserving: those some OOD-only transform applies to."""
    return {
        label
        for label in (HARMFUL, HARMLESS)
        if any(
            t.applies_to(label, cfg.innocuous_on_harmless, cfg.jailbreaks_on_harmless)
            for t, _ in ood_plan
        )
    }


# --- summary ---------------------------------------------------------------------------------


def balance(rows: list[Example]) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
    """Class counts per split, and per (split, source, transform) sorted by split then name."""
    splits = {s: {"rows": 0, "harmful": 0, "harmless": 0, "base_prompts": 0} for s in SPLITS}
    bases: dict[str, set[str]] = {s: set() for s in SPLITS}
    groups: dict[tuple[str, str, str], Counter] = {}
    for r in rows:
        cls = "harmful" if r.label == HARMFUL else "harmless"
        splits[r.split]["rows"] += 1
        splits[r.split][cls] += 1
        bases[r.split].add(r.base_id)
        groups.setdefault((r.split, r.source, r.transform), Counter())[cls] += 1
    for s in SPLITS:
        splits[s]["base_prompts"] = len(bases[s])
    order = {s: i for i, s in enumerate(SPLITS)}
    table = []
    for (split, source, transform), c in sorted(
        groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], kv[0][2])
    ):
        harmful, harmless = c["harmful"], c["harmless"]
        table.append(
            {
                "split": split,
                "source": source,
                "transform": transform,
                "harmful": harmful,
                "harmless": harmless,
                "rows": harmful + harmless,
            }
        )
    return splits, table


def format_table(splits: dict[str, dict[str, int]], groups: list[dict[str, Any]]) -> str:
    """A plain-text balance table: one line per (split, source, transform), a total per split."""
    header = ("split", "source", "transform", "harmful", "harmless", "rows")
    lines: list[tuple[str, ...]] = [header]
    for split in SPLITS:
        for g in (g for g in groups if g["split"] == split):
            counts = (g["harmful"], g["harmless"], g["rows"])
            lines.append((split, g["source"], g["transform"], *map(str, counts)))
        s = splits[split]
        if s["rows"]:
            share = f"{100 * s['harmful'] / s['rows']:.0f}% harmful"
            counts = (s["harmful"], s["harmless"], s["rows"])
            lines.append((split, "(all)", share, *map(str, counts)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for line in lines:
        cells = [
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if line is header or line[1] == "(all)":
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# --- entry points ----------------------------------------------------------------------------


def build_dataset(cfg: DatasetConfig, out: str | Path) -> DatasetSummary:
    """Build the dataset described by `cfg` into the directory `out` (see module docstring)."""
    out = Path(out)
    train_plan = [
        (resolve_transform(s.name, cfg.templates), s.fraction) for s in cfg.transforms.train
    ]
    ood_plan = [(resolve_transform(s.name, cfg.templates), s.fraction) for s in cfg.transforms.ood]
    bases, source_stats = collect_base_prompts(cfg)
    assignment = assign_splits(
        bases, cfg.val_fraction, cfg.ood_fraction, cfg.seed, _reserve_labels(ood_plan, cfg)
    )
    rows, n_repeated = drop_repeated_texts(expand(bases, assignment, train_plan, ood_plan, cfg))
    check_no_leakage(rows)
    check_classes(rows)
    ordered: list[Example] = []
    for split in SPLITS:
        part = [r for r in rows if r.split == split]
        random.Random(f"{cfg.seed}|order|{split}").shuffle(part)
        ordered += part

    splits, groups = balance(ordered)
    table = format_table(splits, groups)
    dataset_path, summary_path = out / DATASET_FILE, out / SUMMARY_FILE

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            for r in ordered:
                fh.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")

    atomic_write(dataset_path, write)
    atomic_write_json(
        summary_path,
        {
            "n_rows": len(ordered),
            "splits": splits,
            "groups": groups,
            "sources": source_stats,
            "reserved_for_ood": sum(
                1 for b in bases if b.role == "train" and assignment[b.base_id] == "ood"
            ),
            "dropped_repeated_texts": n_repeated,
            "config": cfg.model_dump(mode="json"),
        },
    )
    return DatasetSummary(len(ordered), splits, table, dataset_path, summary_path, source_stats)


def load_dataset_dir(out: str | Path) -> list[Example]:
    """Read `out/dataset.jsonl` back as Examples; FormatError if it is missing or malformed."""
    path = Path(out) / DATASET_FILE
    if not path.is_file():
        raise FormatError(f"{path} not found; build the dataset into {out} first")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            try:
                obj = json.loads(line)
                rows.append(Example(**{k: obj[k] for k in FIELDS}))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise FormatError(
                    f"{path}:{i} is not a dataset row with fields {', '.join(FIELDS)}; rebuild it"
                ) from None
    return rows
