"""The offline default prompt set: our own harmful and harmless requests, and a default config.

**What this is.** A small, synthetic set written for this project so that the dataset stage,
its tests and the demos run with no download. It is *not* a benchmark: the prompts were written
by us, not collected from users, and cover far less variety than HarmBench, AdvBench or Alpaca.
For real studies, read those files (see `configs/dataset-shared.yaml`) or a hub dataset.

**Harmful** prompts are short requests of the HarmBench kind: someone asks for help doing
something harmful or that enables harm (weapons, dangerous chemicals, drugs, hacking, fraud,
theft, violence, harassment and stalking, misinformation, hate, evading the law). They are
requests only; no prompt contains instructions or an answer.

**Harmless** prompts are everyday requests over many topics (cooking, travel, programming,
health, finance, science, history, crafts, sports, home, work, pets). Some deliberately borrow
the vocabulary of harm ("kill a Python process", "shoot a portrait", "what are the signs of a
phishing email") so that a probe cannot rely on alarming words alone.

**Construction.** Each set is (a) a list of verb phrases, each put into one of sixteen request
shapes ("How do I ...?", "Walk me through how to ...", ...), and (b) a list of free-standing
requests (writing tasks and questions). Both classes use the *same* shapes with the same
frequencies, so sentence shape carries no label information; only the content does.

**Where the data lives.** The prompts are data, not code: `data/default_prompts.json`, shipped as
package data, holds the shapes and, per class, the verb phrases and the free-standing requests
grouped by topic (the groups are for reading; the order is the order of use). This module reads
it once at import and keeps the public names: `SHAPES`, `HARMFUL_ACTIONS`, `HARMFUL_REQUESTS`,
`HARMLESS_ACTIONS`, `HARMLESS_REQUESTS`, `HARMFUL_PROMPTS`, `HARMLESS_PROMPTS`.
"""

from __future__ import annotations

import json
from importlib import resources

from saeprobe.data.prompts.config import DatasetConfig, dataset_config
from saeprobe.errors import FormatError

DATA_FILE = "default_prompts.json"


def load_prompt_data() -> dict:
    """The packaged prompt file, checked for the fields this module reads."""
    try:
        text = (
            resources.files("saeprobe.data.prompts").joinpath("data", DATA_FILE).read_text("utf-8")
        )
        data = json.loads(text)
        for key in ("harmful_actions", "harmful_requests", "harmless_actions", "harmless_requests"):
            if not all(isinstance(p, str) for group in data[key].values() for p in group):
                raise TypeError(key)
        if not all(isinstance(s, str) and "{vp}" in s for s in data["shapes"]):
            raise TypeError("shapes")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise FormatError(
            f"the packaged {DATA_FILE} of saeprobe.data.prompts is missing or malformed; reinstall "
            "saeprobe"
        ) from None
    return data


def _flat(groups: dict[str, list[str]]) -> tuple[str, ...]:
    return tuple(p for group in groups.values() for p in group)


_DATA = load_prompt_data()
# Request shapes shared by both classes; {vp} is a verb phrase in the base form.
SHAPES: tuple[str, ...] = tuple(_DATA["shapes"])
HARMFUL_ACTIONS = _flat(_DATA["harmful_actions"])
HARMFUL_REQUESTS = _flat(_DATA["harmful_requests"])
HARMLESS_ACTIONS = _flat(_DATA["harmless_actions"])
HARMLESS_REQUESTS = _flat(_DATA["harmless_requests"])


def _shaped(actions: tuple[str, ...], offset: int) -> list[str]:
    """Put each verb phrase in one shape; the stride (coprime to 16) spreads shapes evenly."""
    return [SHAPES[(i * 5 + offset) % len(SHAPES)].format(vp=vp) for i, vp in enumerate(actions)]


HARMFUL_PROMPTS: tuple[str, ...] = tuple(_shaped(HARMFUL_ACTIONS, 0) + list(HARMFUL_REQUESTS))
HARMLESS_PROMPTS: tuple[str, ...] = tuple(_shaped(HARMLESS_ACTIONS, 3) + list(HARMLESS_REQUESTS))


def default_dataset_config(seed: int = 0) -> DatasetConfig:
    """The offline default: our prompts, our wrappers and rewrites, with a train/OOD split of
    transformations that mirrors the study's (weaker and role-play styles for training; refusal
    suppression and an adversarial suffix, all caps and synonyms held out for OOD).

    The jailbreak wrappers also wrap harmless prompts (`jailbreaks_on_harmless`, label stays
    harmless). Without that every wrapper was label-pure, and `saeprobe debug-dataset`
    (configs/debug-default.yaml) found single SAE latents that separated the OOD split on the
    wrappers' own text alone: the random suffix's token soup, "Rule 1: never apologise", and
    the rewrites' fixed phrases (docs/interp.md)."""
    return dataset_config(
        {
            "seed": seed,
            "sources": [
                {"name": "builtin_harmful", "kind": "builtin", "label": "harmful"},
                {"name": "builtin_harmless", "kind": "builtin", "label": "harmless"},
            ],
            "jailbreaks_on_harmless": True,
            "transforms": {
                "train": [
                    "roleplay",
                    "persona",
                    "fiction",
                    "prefix_injection",
                    "how_many_words",
                    "ignore_one_instruction",
                ],
                "ood": ["refusal_suppression", "random_suffix", "all_caps", "find_synonyms"],
            },
        }
    )
