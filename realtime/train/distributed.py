"""Multi-process training (torchrun): this process's rank and the world size, the process group, barriers.

`torchrun --nproc-per-node N -m realtime.cli train ...` sets RANK and WORLD_SIZE; one process alone is rank 0 of 1.
"""

from __future__ import annotations

import datetime
import os

import torch


def rank_and_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def setup_distributed(device: torch.device) -> tuple[int, int]:
    rank, world = rank_and_world()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, timeout=datetime.timedelta(minutes=10))
        if device.type == "cpu":
            torch.set_num_threads(max(1, (os.cpu_count() or 2) // world))
    return rank, world


def barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
