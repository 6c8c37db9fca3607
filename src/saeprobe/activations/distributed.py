"""torchrun support: which rank this process is, a barrier, and each rank's share of the work.

Without torchrun (no WORLD_SIZE in the environment) everything is rank 0 of 1 and no process
group is created.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

_created = False


def setup() -> tuple[int, int]:
    global _created
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        # Long timeout: in a sweep the other ranks wait while rank 0 evaluates a phase.
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=timedelta(hours=2))
        _created = True
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def teardown() -> None:
    global _created
    if _created and dist.is_initialized():
        dist.destroy_process_group()
    _created = False


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def device_for(device: torch.device, rank: int) -> torch.device:
    """One GPU per rank under torchrun (LOCAL_RANK), else the device as given."""
    if device.type == "cuda" and dist.is_initialized():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    return device


def quota(max_tokens: int | None, rank: int, world: int) -> int | None:
    """This rank's share of `max_tokens`; the shares sum to exactly `max_tokens`."""
    if max_tokens is None:
        return None
    return max_tokens // world + (rank < max_tokens % world)
