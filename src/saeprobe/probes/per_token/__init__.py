"""Per-token probes: a linear score per token, aggregated over the prompt by a learnt head."""

from saeprobe.probes.per_token.heads import PER_TOKEN_PROBES
from saeprobe.probes.per_token.probe import PerTokenProbe, PerTokenSettings
from saeprobe.probes.per_token.tokens import TokenFeatures

__all__ = ["PER_TOKEN_PROBES", "PerTokenProbe", "PerTokenSettings", "TokenFeatures"]
