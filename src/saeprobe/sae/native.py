"""Row-wise top-k for the sparse training steps: a small C kernel when a C compiler is there,
torch.topk otherwise (same values and indices; ties may pick other equal entries).

torch.topk copies each row into (value, index) pairs and partially sorts them; after the encoder
matmul it is the largest cost of a TopK step on CPU. The kernel (topk_kernel.c) keeps a k-heap
per row and scans the row 16 values at a time with one vector compare against the heap's minimum.
It is built once with the system compiler (`cc -O3 -march=native`, about a second) into
$SAEPROBE_CACHE/native/, keyed by the source, the flags and the CPU. No compiler, a failed build,
or SAEPROBE_NATIVE=0 falls back to torch. Rows are split over torch's thread count; ctypes
releases the GIL during each call.

NaN is never selected by the kernel (torch.topk ranks NaN first). A NaN pre-activation means the
weights are NaN, which the trainer reports through the loss anyway.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

SOURCE = Path(__file__).with_name("topk_kernel.c")
FLAGS = ["-O3", "-march=native", "-shared", "-fPIC"]


def _cpu_id() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        flags = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    except OSError:
        flags = ""
    return platform.machine() + flags


@functools.cache
def _library():
    """The compiled kernel, or None when it cannot be built here."""
    if os.environ.get("SAEPROBE_NATIVE", "1") == "0" or not SOURCE.exists():
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    from saeprobe.cache import cache_root

    key = hashlib.sha256(SOURCE.read_bytes() + " ".join(FLAGS).encode() + _cpu_id().encode())
    path = cache_root() / "native" / f"topk-{key.hexdigest()[:16]}.so"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            out = Path(tmp) / path.name
            done = subprocess.run(
                [compiler, *FLAGS, str(SOURCE), "-o", str(out)], capture_output=True, text=True
            )
            if done.returncode != 0:
                return None
            os.replace(out, path)  # atomic: concurrent builders agree on one file
    lib = ctypes.CDLL(str(path))
    fn = lib.topk_rows
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, *[ctypes.c_int64] * 4, ctypes.c_int]
    fn.argtypes += [ctypes.c_void_p] * 3
    fn.restype = None
    return fn


@functools.cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="saeprobe-topk")


def available() -> bool:
    return _library() is not None


def _kernel_applies(z: Tensor, k: int) -> bool:
    return (
        z.device.type == "cpu"
        and z.ndim == 2
        and z.dtype in (torch.float32, torch.bfloat16)
        and 0 < k <= z.shape[1]
        and not z.requires_grad
        and _library() is not None
    )


def row_topk(z: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k largest entries of each row of a 2-D tensor, in no particular order."""
    if not _kernel_applies(z, k):
        return z.topk(k, dim=-1, sorted=False)
    z = z.contiguous()
    rows, n = z.shape
    vals = torch.empty(rows, k, dtype=torch.float32)
    idx = torch.empty(rows, k, dtype=torch.int64)
    workers = max(1, min(torch.get_num_threads(), rows // 64 or 1))
    bf16 = z.dtype == torch.bfloat16
    scratch = [torch.empty(n if bf16 else 0) for _ in range(workers)]
    fn = _library()
    parts = [(w * rows // workers, (w + 1) * rows // workers) for w in range(workers)]
    args = (z.data_ptr(), int(bf16))
    jobs = [
        _pool(workers).submit(
            fn, *args, a, b, n, n, k, vals.data_ptr(), idx.data_ptr(), s.data_ptr()
        )
        for (a, b), s in zip(parts, scratch, strict=True)
    ]
    for job in jobs:
        job.result()
    return vals.to(z.dtype), idx
