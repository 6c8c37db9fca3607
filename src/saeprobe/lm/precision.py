"""When to run a model under bf16 autocast.

bf16 autocast roughly doubles a forward pass where the hardware has bf16 matrix units (recent
GPUs; CPUs with AMX), and makes it slower where it is not: on a 2-core AVX2 machine SmolLM2 ran
1.2k tokens/s in fp32 and 0.17k under autocast, and on a 2-core Xeon with AVX512-BF16 but no AMX
a SmolLM2 forward took 1.6x as long under autocast as in fp32 (a bare bf16 matmul there ran at
about the fp32 rate, so the casts are pure cost). So `auto` turns it on only where it is fast:
CUDA devices that support bf16, and CPUs with AMX. The residual stream stays float32 (bf16 block outputs are
added to it) and what is stored is float32: SmolLM2's layer-15 residuals under autocast are
within 0.6 % (median relative error) of fp32, cosine 0.99998 (benchmarks/harvest_throughput.py).
Quantities that difference matters for, ΔLM loss and KL, are always computed in fp32.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def fast_bf16(device: torch.device | str) -> bool:
    """Whether bf16 matrix multiplication runs in hardware on `device`."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # AVX512-BF16 alone only speeds up dot products that oneDNN rarely gets to use here.
        return "amx_bf16" in _cpu_flags()
    return False


def resolve_autocast(setting: bool | None, device: torch.device | str) -> bool:
    """`setting` when given; None means auto: on where bf16 is fast."""
    return fast_bf16(device) if setting is None else bool(setting)


def autocast(enabled: bool, device: torch.device | str):
    device = torch.device(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)
