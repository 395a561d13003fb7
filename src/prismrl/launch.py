"""Where this process stands in a `torchrun` / `accelerate launch` job, read from the variables
both launchers set (WORLD_SIZE, RANK, LOCAL_RANK); a plain `prism ...` is rank 0 of 1. Read from
the environment, not from a process group, so that it can be asked before one exists."""

from __future__ import annotations

import os


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    return int(os.environ.get("RANK", "0")) if launched_world_size() > 1 else 0


def launched_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if launched_world_size() > 1 else 0
