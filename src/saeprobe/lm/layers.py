"""Find the stack of transformer blocks in any Hugging Face model.

"Layer L" means the output of block L (0-based), which equals `hidden_states[L + 1]`. The one
exception is the last layer of models (Llama family) whose last `hidden_states` entry already has
the final norm applied; there "layer L" is still the raw block output.
"""

from __future__ import annotations

from torch import nn

from saeprobe.errors import SaeprobeError

# Where common architectures keep their blocks (BERT, Llama/Gemma/Qwen, GPT-2, GPT-NeoX, ...).
_KNOWN_PATHS = (
    "encoder.layer",
    "model.layers",
    "model.language_model.layers",
    "transformer.h",
    "gpt_neox.layers",
    "model.decoder.layers",
    "layers",
    "h",
)


def _get(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for root in (model, getattr(model, "base_model", None)):
        if root is None:
            continue
        for path in _KNOWN_PATHS:
            blocks = _get(root, path)
            if isinstance(blocks, nn.ModuleList) and (n is None or len(blocks) == n):
                return blocks
    # Fallback: the module list whose length matches the configured depth.
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise SaeprobeError(
        f"cannot find the transformer blocks of {type(model).__name__}; this architecture is "
        "not supported yet, please report it"
    )
