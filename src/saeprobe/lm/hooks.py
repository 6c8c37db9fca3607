"""Capture block outputs (stopping the forward pass early) and splice replacements back in.

A block returns a tensor (transformers 5 decoder blocks) or a tuple whose first element is the
hidden state (older versions, encoders); both are handled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class _StopForward(Exception):
    """Raised by the last hook so the layers after it are never computed."""


def _hidden(output) -> Tensor:
    return output if isinstance(output, Tensor) else output[0]


def _replace(output, hidden: Tensor):
    if isinstance(output, Tensor):
        return hidden
    return (hidden, *output[1:])


@torch.no_grad()
def capture_layers(
    model: nn.Module, blocks: nn.ModuleList, layers: list[int], **inputs
) -> dict[int, Tensor]:
    """Outputs of `blocks[L]` for each L in `layers`, from one forward pass cut after max(layers)."""
    wanted = sorted(set(layers))
    last = wanted[-1]
    captured: dict[int, Tensor] = {}
    handles = []

    def hook_for(layer: int):
        def hook(_module, _args, output):
            captured[layer] = _hidden(output).detach()
            if layer == last:
                raise _StopForward

        return hook

    try:
        for layer in wanted:
            handles.append(blocks[layer].register_forward_hook(hook_for(layer)))
        try:
            model(**inputs)
        except _StopForward:
            pass
    finally:
        for h in handles:
            h.remove()
    return captured


@contextmanager
def splice(blocks: nn.ModuleList, layer: int, fn: Callable[[Tensor], Tensor]) -> Iterator[None]:
    """Within the block, layer `layer`'s output hidden state is replaced by `fn(hidden)`."""

    def hook(_module, _args, output):
        hidden = _hidden(output)
        return _replace(output, fn(hidden).to(hidden.dtype))

    handle = blocks[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
