"""A long phase leaves a small file saying it is running; finding one on resume whose process is
gone means the last run died without a word.

A Python error removes the file on its way out (its traceback speaks for itself). SIGKILL leaves
it, and on a training machine SIGKILL almost always comes from the kernel's OOM killer: full
fine-tuning at 4 x 2.5k tokens was killed at 24 GB resident here and `prism sft` printed nothing.
So each beat records the resident memory, and the next run in the folder says what happened.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import time
import warnings
from pathlib import Path

from prismrl.fileio import atomic_write_json


class KilledRunWarning(UserWarning):
    pass


OOM_SHARE = 0.8  # of the machine's memory: a run killed above it most likely ran out


def _gb(kib: float) -> float:
    return kib / 2**20


def resident_gb() -> float:
    """This process's current resident memory (Linux /proc; the peak elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return _gb(float(line.split()[1]))
    except OSError:
        pass
    return _gb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def machine_memory_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def cgroup_oom_kills() -> int | None:
    """OOM kills the kernel counted in this cgroup (v2), if it says."""
    try:
        for line in Path("/sys/fs/cgroup/memory.events").read_text().splitlines():
            key, value = line.split()
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def previous_run_message(path: Path, phase: str) -> str | None:
    """What a heartbeat file left by a dead process says, or None when there is none to report."""
    try:
        beat = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if beat.get("host") == socket.gethostname() and beat.get("pid") != os.getpid() and _alive(int(beat.get("pid", -1))):
        return None  # still running (another process in the same folder is the caller's problem)
    minutes = (beat.get("time", 0) - beat.get("started", 0)) / 60
    peak = beat.get("peak_rss_gb") or beat.get("rss_gb") or 0.0
    machine = machine_memory_gb()
    where = f"at {beat['step']}" if beat.get("step") is not None else "before its first progress report"
    kills = cgroup_oom_kills()
    # the OOM killer picks a process when the machine runs out; far below that, a kill was sent
    out_of_memory = bool(kills) or machine is None or peak >= OOM_SHARE * machine
    message = (
        f"the previous {phase} run in {path.parent} (pid {beat.get('pid')}) stopped {where}, {minutes:.0f} min after "
        f"it started, without finishing and without an error: it was killed (SIGKILL, or a signal such as SIGTERM "
        f"that Python does not catch). Its resident memory had "
        f"reached {peak:.1f} GB" + (f" of this machine's {machine:.0f} GB" if machine else "")
    )
    if out_of_memory:
        message += (
            f", so the kernel's OOM killer is the likely cause (`dmesg` or `journalctl -k` shows 'Killed "
            f"process {beat.get('pid')}'). Resuming from the last checkpoint; if it happens again lower the "
            f"batch size or max_length, or turn on gradient checkpointing."
        )
    else:
        message += (
            ", far from full, so more likely a kill from outside (a user, the end of a session or job) than "
            "the OOM killer. Resuming from the last checkpoint."
        )
    if kills:
        message += f" This cgroup has counted {kills} OOM kill(s)."
    return message


class Heartbeat:
    """`with Heartbeat(out, "sft") as beat: ... beat(step=...)`; warns on entry about a killed run."""

    def __init__(self, folder: str | Path, phase: str, enabled: bool = True):
        self.path = Path(folder) / f".{phase}.running.json"
        self.phase = phase
        self.enabled = enabled
        self.started = time.time()
        self.peak = 0.0

    def __enter__(self) -> Heartbeat:
        if self.enabled:
            message = previous_run_message(self.path, self.phase)
            if message:
                warnings.warn(message, KilledRunWarning, stacklevel=2)
            self()
        return self

    def __call__(self, **progress) -> None:
        if not self.enabled:
            return
        rss = resident_gb()
        self.peak = max(self.peak, rss, _gb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
        atomic_write_json(
            self.path,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": self.started,
                "time": time.time(),
                "rss_gb": round(rss, 3),
                "peak_rss_gb": round(self.peak, 3),
                **progress,
            },
        )

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.path.unlink(missing_ok=True)
