"""The probe across processes: `torchrun --nproc_per_node N prism probe ...` or
`accelerate launch --num_processes N -m prismrl.cli probe ...`.

Both launchers set RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; with WORLD_SIZE > 1
the process group is joined with gloo on CPU and nccl on GPU (one GPU per local rank). Only
barriers are exchanged: each rank probes its share and appends to its own file, rank 0 merges
(see `runner.run_probe`).
"""

from __future__ import annotations


import torch
import torch.distributed as dist

from prismrl.launch import launched_local_rank, launched_world_size

_joined_here = False


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: str | None) -> str | None:
    """Join the process group when launched with WORLD_SIZE > 1; returns the device this rank uses."""
    global _joined_here
    if launched_world_size() <= 1:
        return device
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    local_rank = launched_local_rank()
    on_gpu = device.startswith("cuda") if device else torch.cuda.is_available()
    if on_gpu:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    else:
        device = device or "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if on_gpu else "gloo")
        _joined_here = True
    return device


def barrier() -> None:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def finish() -> None:
    """Leave the process group if `init_from_env` joined it."""
    global _joined_here
    if _joined_here and dist.is_initialized():
        dist.destroy_process_group()
    _joined_here = False
