"""Per-phase cost records: every phase appends one line to `ledger.jsonl` in its run folder.

Peak memory is per phase: `prism run` runs every phase in one process, so on Linux each phase
resets the process's resident-set high-water mark when it starts (elsewhere it is the process's
peak so far).

FLOPs are the usual estimates: 2·P per token for a forward pass (inference, generation) and
4·P more for a backward pass, so training costs 6·P·tokens. A pipeline's cost is the sum of its
lines; the paper's speed-up (e.g. 3.22×) is the rl-all pipeline's cost over another's.

A phase killed outright (SIGKILL, a session's end) runs no exit code, so while it runs its record
so far is rewritten every CHECKPOINT_SECONDS to `ledger.running.json`; the next phase started in
the folder finds it and appends it, marked killed. A phase resumed over several processes thus
costs the sum of its lines, losing at most CHECKPOINT_SECONDS per kill.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from prismrl.fileio import JsonlAppender, atomic_write_json, read_jsonl_prefix, repair_jsonl

LEDGER_FILE = "ledger.jsonl"
RUNNING_FILE = "ledger.running.json"
CHECKPOINT_SECONDS = 60.0
KILLED_NOTE = f"killed; its cost up to the last update (every {CHECKPOINT_SECONDS:.0f} s)"


def reset_peak_rss() -> None:
    """Start a new resident-set high-water mark for this process (Linux, `clear_refs` value 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def hardware() -> str:
    cpu = f"{os.cpu_count()} CPU cores ({platform.machine()})"
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}× {torch.cuda.get_device_name(0)}, {cpu}"
    return cpu


@dataclass
class CostRecord:
    phase: str
    params: int
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    gpu_seconds: float | None = None
    forward_tokens: int = 0  # tokens through forward passes without a backward
    backward_tokens: int = 0  # tokens through forward + backward
    generated_tokens: int = 0
    flops: float = 0.0
    peak_memory_gb: float = 0.0
    hardware: str = field(default_factory=hardware)
    note: str = ""

    def add(self, forward: int = 0, backward: int = 0, generated: int = 0) -> None:
        self.forward_tokens += forward
        self.backward_tokens += backward
        self.generated_tokens += generated


def _append(path: Path, record: dict) -> None:
    repair_jsonl(path)  # a run killed mid-write left half a line
    with JsonlAppender(path) as sink:
        sink.write(record)


def append_killed(out_dir: str | Path) -> None:
    """Append the record a killed phase left in `out_dir`, if any."""
    running = Path(out_dir) / RUNNING_FILE
    if not running.exists():
        return
    try:
        record = json.loads(running.read_text())
    except json.JSONDecodeError:  # written atomically, so only a hand-edited file gets here
        record = None
    if record is not None:
        record["note"] = f"{record['note']} {KILLED_NOTE}".strip()
        _append(Path(out_dir) / LEDGER_FILE, record)
    running.unlink()


class phase:
    """`with phase("probe", out_dir, params) as cost: cost.add(backward=n)` appends one record."""

    def __init__(self, name: str, out_dir: str | Path, params: int, note: str = ""):
        self.record = CostRecord(phase=name, params=params, note=note)
        self.path = Path(out_dir) / LEDGER_FILE
        self.running = Path(out_dir) / RUNNING_FILE
        self._stop = threading.Event()
        self._checkpoints = threading.Thread(target=self._checkpoint_until_stopped, daemon=True)

    def __enter__(self) -> CostRecord:
        append_killed(self.path.parent)
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        reset_peak_rss()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._checkpoints.start()
        return self.record

    def _measure(self, record: CostRecord) -> CostRecord:
        """Fill in `record`'s time, FLOPs and peak memory as of now."""
        record.wall_seconds = time.perf_counter() - self._wall
        record.cpu_seconds = time.process_time() - self._cpu
        p = record.params
        record.flops = 2.0 * p * (record.forward_tokens + record.generated_tokens) + 6.0 * p * record.backward_tokens
        # ru_maxrss is the process's peak in KiB on Linux, since the reset in __enter__.
        record.peak_memory_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        if torch.cuda.is_available():
            record.gpu_seconds = record.wall_seconds * torch.cuda.device_count()
            record.peak_memory_gb = torch.cuda.max_memory_allocated() / 2**30
        return record

    def _checkpoint_until_stopped(self) -> None:
        while not self._stop.wait(CHECKPOINT_SECONDS):
            self.running.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.running, asdict(self._measure(replace(self.record))))

    def __exit__(self, exc_type, *exc) -> None:
        self._stop.set()
        self._checkpoints.join()
        record = self._measure(self.record)
        if exc_type is not None:
            record.note = f"{record.note} interrupted by {exc_type.__name__}".strip()
        _append(self.path, asdict(record))
        self.running.unlink(missing_ok=True)


def total(out_dir: str | Path) -> dict:
    """Sum of a run folder's ledger, per phase and overall."""
    records = read_jsonl_prefix(Path(out_dir) / LEDGER_FILE)
    by_phase: dict[str, dict] = {}
    for r in records:
        acc = by_phase.setdefault(r["phase"], {"wall_seconds": 0.0, "cpu_seconds": 0.0, "flops": 0.0, "tokens": 0})
        acc["wall_seconds"] += r["wall_seconds"]
        acc["cpu_seconds"] += r["cpu_seconds"]
        acc["flops"] += r["flops"]
        acc["tokens"] += r["forward_tokens"] + r["backward_tokens"] + r["generated_tokens"]
    overall = {k: sum(p[k] for p in by_phase.values()) for k in ("wall_seconds", "cpu_seconds", "flops", "tokens")}
    return {"phases": by_phase, "total": overall}
