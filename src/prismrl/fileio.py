"""Crash-safe file output shared by every phase.

Whole files and folders (checkpoints, models, datasets) are written to a temporary sibling and
renamed into place, so a reader never sees half of one. Long-running phases instead append one JSON line at a time with fsync, and on
restart drop a torn last line (`read_jsonl_prefix`), so finished work is never lost.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    # mkstemp creates 0600; give the file the mode a plain open() would have.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Fill the yielded staging folder; on success it becomes `target` (replacing an older one),
    on an exception it is deleted, so `target` is never half written."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; give it a plain mkdir's mode
    try:
        yield staging
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_dir(staging: str | Path, target: str | Path) -> None:
    """Move a finished folder into place; an older `target` is moved aside first, then removed."""
    staging, target = Path(staging), Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def atomic_savefig(fig: Any, path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)


def read_jsonl_prefix(path: str | Path) -> list[dict[str, Any]]:
    """Records of an append-only JSONL file up to a torn (unterminated or unparsable) tail.
    Reads only: the tail may be a line its writer is still appending."""
    return _whole_lines(Path(path))[0]


def repair_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """`read_jsonl_prefix`, and a torn tail cut off so that the next append starts a line of its
    own. For the file's one writer, before it appends (a crash can leave half a line)."""
    path = Path(path)
    records, good_bytes = _whole_lines(path)
    if path.exists() and good_bytes != path.stat().st_size:
        with path.open("r+b") as f:
            f.truncate(good_bytes)
    return records


def _whole_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    records, good_bytes = [], 0
    if not path.exists():
        return records, good_bytes
    with path.open("rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                records.append(json.loads(raw))
            except json.JSONDecodeError:
                break
            good_bytes += len(raw)
    return records, good_bytes


class JsonlAppender:
    """Appends one record per line and makes it durable before returning."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
