"""How many CPU threads torch uses, set once per command before any model is loaded.

Two torch processes on the same cores slow each other by up to 10x: every OpenMP region waits for
a thread the scheduler has parked. So each process takes its share of the cores it may run on
(its CPU affinity divided by the processes torchrun/accelerate started on this node), and a
command started on an already busy machine says so.
"""

from __future__ import annotations

import os
import warnings

import torch

from prismrl.errors import ConfigError


class BusyMachineWarning(UserWarning):
    pass


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, available_cores() // max(1, local_processes))


def use_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (`threads`, or this process's share of the cores) and warn when
    the 1-minute load average already exceeds the cores: timings taken now will be slow."""
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    n = threads or default_threads()
    torch.set_num_threads(n)
    cores = available_cores()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > cores:
        warnings.warn(
            f"the load average ({load:.1f}) exceeds the {cores} cores: another job is running, so this one "
            f"(and that one) will run slower, up to 10x for two torch processes; timings taken now are not comparable",
            BusyMachineWarning,
            stacklevel=2,
        )
    return n
