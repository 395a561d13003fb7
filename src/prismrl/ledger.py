"""Per-phase cost records: every phase appends one line to `ledger.jsonl` in its run folder.

Peak memory is per phase: `prism run` runs every phase in one process, so on Linux each phase
resets the process's resident-set high-water mark when it starts (elsewhere it is the process's
peak so far).

FLOPs are the usual estimates: 2·P per token for a forward pass (inference, generation) and
4·P more for a backward pass, so training costs 6·P·tokens. A pipeline's cost is the sum of its
lines; the paper's speed-up (e.g. 3.22×) is the rl-all pipeline's cost over another's.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from prismrl.fileio import JsonlAppender, read_jsonl_prefix, repair_jsonl

LEDGER_FILE = "ledger.jsonl"


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


class phase:
    """`with phase("probe", out_dir, params) as cost: cost.add(backward=n)` appends one record."""

    def __init__(self, name: str, out_dir: str | Path, params: int, note: str = ""):
        self.record = CostRecord(phase=name, params=params, note=note)
        self.path = Path(out_dir) / LEDGER_FILE

    def __enter__(self) -> CostRecord:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        reset_peak_rss()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        return self.record

    def __exit__(self, exc_type, *exc) -> None:
        record = self.record
        record.wall_seconds = time.perf_counter() - self._wall
        record.cpu_seconds = time.process_time() - self._cpu
        p = record.params
        record.flops = 2.0 * p * (record.forward_tokens + record.generated_tokens) + 6.0 * p * record.backward_tokens
        # ru_maxrss is the process's peak in KiB on Linux, since the reset in __enter__.
        record.peak_memory_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        if torch.cuda.is_available():
            record.gpu_seconds = record.wall_seconds * torch.cuda.device_count()
            record.peak_memory_gb = torch.cuda.max_memory_allocated() / 2**30
        if exc_type is not None:
            record.note = (record.note + " " if record.note else "") + f"interrupted by {exc_type.__name__}"
        repair_jsonl(self.path)  # a run killed mid-write left half a line
        with JsonlAppender(self.path) as sink:
            sink.write(asdict(record))


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
