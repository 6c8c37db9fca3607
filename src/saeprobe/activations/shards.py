"""Shard files: plain `.npy` arrays, written atomically, hashed while written, memory-mapped.

Per shard there is one `[n, d_model]` array per layer and one structured array of per-token
metadata (token id, document id, window within the document, position in the window). bfloat16, which NumPy lacks, is stored
as its raw 16 bits (int16) and viewed back as bfloat16 when read.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from saeprobe.errors import DataError
from saeprobe.io_utils import atomic_write

# (doc_id, window, position) identifies a token: `window` counts a document's context windows.
TOKEN_DTYPE = np.dtype(
    [("token_id", "<i4"), ("doc_id", "<i8"), ("window", "<i4"), ("position", "<i4")]
)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def shard_stem(rank: int, index: int) -> str:
    return f"r{rank:02d}-{index:05d}"


def layer_file(stem: str, layer: int) -> str:
    return f"shards/{stem}.L{layer}.npy"


def tokens_file(stem: str) -> str:
    return f"shards/{stem}.tokens.npy"


def write_array(path: Path, chunks: np.ndarray | list[np.ndarray]) -> str:
    """Atomically write `chunks` (arrays stacked along axis 0) as one .npy; return its sha256.

    The data goes to the file and to the hash straight from each chunk's buffer: no stacking
    copy, and none of the intermediate copies `np.save` makes for file-like objects. No fsync:
    a process kill cannot lose page-cache writes, and after a power loss a damaged shard fails
    its checksum on read instead of passing as valid.
    """
    chunks = [np.ascontiguousarray(c) for c in (chunks if isinstance(chunks, list) else [chunks])]
    first = chunks[0]
    shape = (sum(len(c) for c in chunks), *first.shape[1:])
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header,
        {
            "descr": np.lib.format.dtype_to_descr(first.dtype),
            "fortran_order": False,
            "shape": shape,
        },
    )
    bodies = [c.reshape(-1).view(np.uint8).data for c in chunks]
    digest = hashlib.sha256(header.getvalue())
    for body in bodies:
        digest.update(body)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(header.getvalue())
            for body in bodies:
                fh.write(body)

    atomic_write(path, write, fsync=False)
    return digest.hexdigest()


def to_storage(acts: Tensor) -> np.ndarray:
    if acts.dtype == torch.bfloat16:
        return acts.contiguous().view(torch.int16).numpy()
    return acts.to(torch.float32).contiguous().numpy()


def from_storage(array: np.ndarray, dtype: str) -> Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.view(torch.bfloat16) if dtype == "bfloat16" else tensor


def open_array(path: Path, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Memory-map a shard; a missing, truncated or mis-shaped file is a one-line error."""
    fix = "re-run the harvest with --resume, or harvest into a fresh --out"
    if not path.is_file():
        raise DataError(f"shard {path} is missing; {fix}")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise DataError(f"shard {path} is truncated or not a .npy file; {fix}") from None
    if array.shape != shape:
        raise DataError(f"{what} shard {path} has shape {array.shape}, expected {shape}; {fix}")
    return array
