"""The harmful-intent probing dataset stage.

Sources (benchmark files, generic tables, the hub, or our offline set) give labelled base
prompts; jailbreak wrappers and innocuous rewrites turn them into hard positives and hard
negatives; a grouped, seeded split keeps every base prompt in one of train / val / ood, with some
transformations held out for ood only. See `build.py` for the files written and `split.py` for
the leakage guarantee.
"""

from saeprobe.data.prompts.build import DatasetSummary, build_dataset, load_dataset_dir
from saeprobe.data.prompts.config import (
    DatasetConfig,
    SourceConfig,
    TransformSpec,
    dataset_config,
    load_dataset_config,
)
from saeprobe.data.prompts.default_prompts import default_dataset_config
from saeprobe.data.prompts.examples import HARMFUL, HARMLESS, BasePrompt, Example

__all__ = [
    "HARMFUL",
    "HARMLESS",
    "BasePrompt",
    "DatasetConfig",
    "DatasetSummary",
    "Example",
    "SourceConfig",
    "TransformSpec",
    "build_dataset",
    "dataset_config",
    "default_dataset_config",
    "load_dataset_config",
    "load_dataset_dir",
]
