"""Stage I over a file: `run_probe` probes every trajectory into `probe.jsonl`, resuming where a
previous run stopped and sharing the work among the processes of a torchrun / accelerate launch.

Each concern is one piece: `_resume` (what a previous run left, and whether this run may add to
it), `_rank_batches` (which batches this process computes), `_WindowWriter` (records appended in
input order, fsync'd, so an interruption loses at most one window), `_progress` (the bar), and
`_merge_rank_files` (rank 0 puts the shards in input order at the end). A rerun skips finished ids
and gives the same file as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

import prismrl
from prismrl.data.format import DEFAULT_MAX_LENGTH, CannotEncode, Encoded, encode
from prismrl.data.schema import Trajectory
from prismrl.errors import ConfigError, PrismError
from prismrl.fileio import JsonlAppender, atomic_write_json, atomic_write_jsonl, read_jsonl_prefix, repair_jsonl
from prismrl.prism.probe import GradientProbe

PROBE_FILE = "probe.jsonl"
META_FILE = "probe_meta.json"
RANK_FILE_GLOB = "probe.rank*.jsonl"  # one per process of a multi-process run, merged into PROBE_FILE at its end
# Settings that change the numbers: a resumed run must match them exactly.
_IDENTITY_KEYS = ("model", "unit_names", "max_length", "dtype", "chat_template_sha256")


class ProbeMismatch(PrismError, RuntimeError):
    pass


@dataclass
class ProbeSummary:
    n_total: int
    n_resumed: int = 0
    n_probed: int = 0
    n_truncated: int = 0
    flagged: dict[str, str] = field(default_factory=dict)  # id → why it is excluded from routing
    seconds: float = 0.0
    tokens: int = 0


def chat_template_sha256(tokenizer) -> str:
    return hashlib.sha256((tokenizer.chat_template or "").encode()).hexdigest()


def probe_meta(model_name: str, probe: GradientProbe, tokenizer, max_length: int | None, dtype: str) -> dict:
    return {
        "model": model_name,
        "unit_names": [u.name for u in probe.units],
        "unit_kinds": [u.kind for u in probe.units],
        "unit_layers": [u.layer for u in probe.units],
        "unit_numel": [u.numel for u in probe.units],
        "max_length": max_length,
        "dtype": dtype,
        "chat_template_sha256": chat_template_sha256(tokenizer),
        "prismrl_version": prismrl.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _check_resumable(out_dir: Path, meta: dict) -> None:
    meta_path = out_dir / META_FILE
    if not meta_path.exists():
        return
    previous = json.loads(meta_path.read_text())
    changed = [k for k in _IDENTITY_KEYS if previous.get(k) != meta[k]]
    if changed:
        raise ProbeMismatch(
            f"{out_dir} already holds a probe with different {', '.join(changed)}; "
            "resume needs the same settings: use another --out folder or the original settings"
        )
    meta["created"] = previous["created"]


def _unencodable_record(trajectory: Trajectory, error: CannotEncode) -> dict:
    return {
        "id": trajectory.id,
        "task_id": trajectory.task_id,
        "n_tokens": None,
        "n_response_tokens": 0,
        "truncated": True,
        "n_dropped_turns": None,
        "loss": None,
        "norms": None,
        "flag": str(error),
    }


def _result_record(trajectory: Trajectory, encoded: Encoded, loss: float, norms: list[float], units) -> dict:
    record = {
        "id": trajectory.id,
        "task_id": trajectory.task_id,
        "n_tokens": encoded.n_tokens,
        "n_response_tokens": encoded.n_response_tokens,
        "truncated": encoded.truncated,
        "n_dropped_turns": encoded.n_dropped_turns,
    }
    if not math.isfinite(loss):
        return {**record, "loss": None, "norms": None, "flag": "non-finite loss"}
    if not all(math.isfinite(n) for n in norms):
        bad = [units[i].name for i, n in enumerate(norms) if not math.isfinite(n)]
        return {**record, "loss": loss, "norms": None, "flag": f"non-finite gradient in {len(bad)} units, first {bad[0]}"}
    return {**record, "loss": loss, "norms": norms}


def _rank_files(out_dir: Path) -> list[Path]:
    return sorted(out_dir.glob(RANK_FILE_GLOB))


def _merge_rank_files(out_dir: Path, trajectories: list[Trajectory]) -> None:
    """probe.jsonl + every probe.rank*.jsonl → probe.jsonl in input order (atomic), rank files removed."""
    shards = _rank_files(out_dir)
    if not shards:
        return
    records: dict[str, dict] = {}
    for path in [out_dir / PROBE_FILE, *shards]:
        for record in read_jsonl_prefix(path):
            records.setdefault(record["id"], record)
    atomic_write_jsonl(out_dir / PROBE_FILE, [records[t.id] for t in trajectories if t.id in records])
    for path in shards:
        path.unlink()


def _resume(out_dir: Path, meta: dict, trajectories: list[Trajectory], rank: int, on_start: Callable[[], None] | None) -> dict[str, dict]:
    """The records a previous run left (id → record), once this probe is known to fit the folder;
    only then is probe_meta.json written and `on_start` run (rank 0), so a refused resume leaves
    the folder as it was."""
    from prismrl.prism import distributed

    _check_resumable(out_dir, meta)
    if rank == 0:
        for path in [out_dir / PROBE_FILE, *_rank_files(out_dir)]:
            repair_jsonl(path)  # drops a torn last line before anyone reads or appends
    distributed.barrier()
    done: dict[str, dict] = {}
    for path in [out_dir / PROBE_FILE, *_rank_files(out_dir)]:
        for record in read_jsonl_prefix(path):
            done.setdefault(record["id"], record)
    distributed.barrier()  # every rank has read before any appends
    stale = set(done) - {t.id for t in trajectories}
    if stale:
        raise ProbeMismatch(
            f"{out_dir / PROBE_FILE} holds {len(stale)} ids not in the input (e.g. {sorted(stale)[0]!r}); use another --out"
        )
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / META_FILE, meta)
        if on_start:
            on_start()
    distributed.barrier()
    return done


def _windows(trajectories: list[Trajectory], size: int) -> Iterator[tuple[int, list[Trajectory]]]:
    for k, first in enumerate(range(0, len(trajectories), size)):
        yield k, trajectories[first : first + size]


def _encoded(members: list[Trajectory], tokenizer, max_length: int | None) -> tuple[dict[int, Encoded], dict[int, dict]]:
    """Each member's tokens and loss mask, and the records of those that cannot be encoded."""
    encoded: dict[int, Encoded] = {}
    unencodable: dict[int, dict] = {}
    for i, trajectory in enumerate(members):
        try:
            encoded[i] = encode(trajectory, tokenizer, max_length)
        except CannotEncode as error:
            unencodable[i] = _unencodable_record(trajectory, error)
    return encoded, unencodable


def _rank_batches(
    members: list[Trajectory], encoded: dict[int, Encoded], done: dict[str, dict], batch_tokens: int | None, k: int, rank: int, world: int
) -> list[list[int]]:
    """This rank's batches of window `k` that still hold unfinished members. The plan covers the
    whole window, finished members included, so a resumed or sharded run forms exactly the
    batches of an uninterrupted single-process one."""
    from prismrl.prism.batched import plan_batches

    lengths = [encoded[i].n_tokens if i in encoded else None for i in range(len(members))]
    return [
        b
        for j, b in enumerate(plan_batches(lengths, batch_tokens, window=len(members)))
        if (j + k) % world == rank and any(members[i].id not in done for i in b)
    ]


class _WindowWriter:
    """Appends a window's finished records to the sink: with one process in input order (the
    longest finished prefix of the window), with several as they come (rank 0 puts them in order
    when merging)."""

    def __init__(self, pending: list[int], records: dict[int, dict], in_order: bool, write: Callable[[dict], None]):
        self.pending, self.records, self.in_order, self.write = pending, records, in_order, write
        self.written: set[int] = set()
        self._cursor = 0

    def flush(self) -> None:
        if self.in_order:
            ready = []
            while self._cursor < len(self.pending) and self.pending[self._cursor] in self.records:
                ready.append(self.pending[self._cursor])
                self._cursor += 1
        else:
            ready = [i for i in self.pending if i in self.records and i not in self.written]
        for i in ready:
            self.write(self.records[i])
            self.written.add(i)


def _count_results(out_dir: Path, done: dict[str, dict], summary: ProbeSummary, world: int) -> None:
    """Truncations and flags from the merged file; with several processes also the whole run's
    work (each rank has counted only its own)."""
    if world > 1:
        summary.n_probed = summary.tokens = 0
    for record in read_jsonl_prefix(out_dir / PROBE_FILE):
        summary.n_truncated += bool(record.get("truncated"))
        if record.get("flag"):
            summary.flagged[record["id"]] = record["flag"]
        if world > 1 and record["id"] not in done:
            summary.n_probed += 1
            summary.tokens += record["n_tokens"] or 0


def run_probe(
    model: torch.nn.Module,
    tokenizer,
    trajectories: list[Trajectory],
    out_dir: str | Path,
    model_name: str,
    max_length: int | None = DEFAULT_MAX_LENGTH,
    dtype: str = "float32",
    progress: bool = True,
    batch_tokens: int | None = None,
    gradient_checkpointing: bool = False,
    norm_method: str = "auto",
    window: int = 64,
    on_start: Callable[[], None] | None = None,
) -> ProbeSummary:
    """Probe every trajectory into `out_dir/probe.jsonl`, resuming where a previous run stopped.

    `batch_tokens` None (default): the batch-1 reference, one backward per trajectory (the paper's
    procedure). An int: the batched exact probe (`prism.batched`), trajectories sorted by length
    within consecutive windows of `window` and packed up to that many padded tokens per batch;
    records are still appended in input order, so an interruption loses at most one window.
    `gradient_checkpointing` (batched probe, batches of one without `batch_tokens`) recomputes
    each layer in the backward, for long contexts.

    Launched by torchrun / accelerate (torch.distributed initialised, world size > 1), ranks share
    the batches (fixed by the input and settings alone, so every number is the one a single
    process computes), each appends to probe.rank{r}.jsonl, and rank 0 merges them into
    probe.jsonl in input order. `on_start` runs (on rank 0) once the folder is known to accept
    this probe, before anything is written there but probe_meta.json."""
    from prismrl.prism import distributed
    from prismrl.prism.batched import BatchedProbe

    if batch_tokens is not None and batch_tokens < 1:
        raise ConfigError(f"--batch-tokens must be a positive number of tokens, got {batch_tokens}")
    out_dir = Path(out_dir)
    rank, world = distributed.rank_and_world()
    batched = bool(batch_tokens) or gradient_checkpointing
    probe = BatchedProbe(model, norm_method, gradient_checkpointing) if batched else GradientProbe(model)
    meta = probe_meta(model_name, probe, tokenizer, max_length, dtype)
    meta.update(batch_tokens=batch_tokens, gradient_checkpointing=gradient_checkpointing, world_size=world)
    done = _resume(out_dir, meta, trajectories, rank, on_start)
    n_todo = sum(t.id not in done for t in trajectories)
    summary = ProbeSummary(n_total=len(trajectories), n_resumed=len(done))
    start = time.perf_counter()
    sink_path = out_dir / (PROBE_FILE if world == 1 else f"probe.rank{rank}.jsonl")
    with probe, JsonlAppender(sink_path) as sink, _progress(progress and rank == 0, -(-n_todo // world)) as bar:

        def write(record: dict) -> None:
            sink.write(record)
            summary.tokens += record["n_tokens"] or 0
            bar.advance(record["n_tokens"] or 0)

        for k, members in _windows(trajectories, max(1, window) if batch_tokens else 1):
            pending = [i for i, t in enumerate(members) if t.id not in done]
            if not pending or (not batch_tokens and k % world != rank):
                continue  # done, or (one trajectory per batch) another rank's
            encoded, unencodable = _encoded(members, tokenizer, max_length)
            records = unencodable if k % world == rank else {}
            writer = _WindowWriter(pending, records, in_order=world == 1, write=write)
            writer.flush()
            for batch in _rank_batches(members, encoded, done, batch_tokens, k, rank, world):
                if batched:
                    results = probe([(encoded[i].input_ids, encoded[i].labels) for i in batch])
                else:
                    results = [probe(encoded[i].input_ids, encoded[i].labels) for i in batch]
                for i, (loss, norms) in zip(batch, results):
                    if members[i].id not in done:
                        records[i] = _result_record(members[i], encoded[i], loss, norms, probe.units)
                writer.flush()
            summary.n_probed += len(writer.written)
    summary.seconds = time.perf_counter() - start
    distributed.barrier()  # every shard is complete
    if rank == 0:
        _merge_rank_files(out_dir, trajectories)
    distributed.barrier()
    _count_results(out_dir, done, summary, world)
    return summary


class _progress:
    """A rich progress bar with trajectories/s, tokens/s and ETA (silent when disabled)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self.tokens = enabled and total > 0, total, 0

    def __enter__(self) -> "_progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            from prismrl.progress import Progress

            self._bar = Progress(
                TextColumn("probe"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self._bar.start()
            self._task = self._bar.add_task("probe", total=self.total, rate="")
            self._start = time.perf_counter()
        return self

    def advance(self, tokens: int) -> None:
        if not self.enabled:
            return
        self.tokens += tokens
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        done = self._bar.tasks[0].completed + 1
        self._bar.update(self._task, advance=1, rate=f"{done / elapsed:.2f} traj/s {self.tokens / elapsed:.0f} tok/s")

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._bar.stop()
