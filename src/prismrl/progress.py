"""Progress of long work: rich's bar in a terminal, plain timestamped lines in a log or a pipe.

rich draws its bar with cursor movements that a log file cannot replay, so redirected output
showed nothing until the bar's final frame. `Progress` keeps rich's interface (add_task /
update / tasks) so callers do not care which one they got.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from rich.console import Console

PLAIN_EVERY_SECONDS = 30.0


def Progress(*columns, disable: bool = False, console: Console | None = None):  # noqa: N802 - rich's name, rich's signature
    """rich.progress.Progress on a terminal (on stderr), else a `PlainProgress` writing lines."""
    from rich.progress import Progress as RichProgress

    console = console or Console(stderr=True)
    if disable or console.is_terminal:
        return RichProgress(*columns, disable=disable, console=console)
    return PlainProgress(sys.stderr)


def quiet_library_bars() -> None:
    """In a log or a pipe, switch off the tqdm bars of transformers, datasets and the hub
    ("Loading weights", "Writing model shards", "Map"): each is one long line of redraws there."""
    if sys.stderr.isatty():
        return
    import datasets
    import huggingface_hub.utils
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    huggingface_hub.utils.disable_progress_bars()


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    visible: bool
    fields: dict = field(default_factory=dict)
    initial: float = 0.0  # completed before this process started (a resumed job): not in the rate
    start: float = field(default_factory=time.perf_counter)
    last_line: float = float("-inf")


class PlainProgress:
    """One line per task every PLAIN_EVERY_SECONDS, and when a task completes."""

    def __init__(self, stream, every_seconds: float = PLAIN_EVERY_SECONDS):
        self.stream, self.every_seconds, self.tasks = stream, every_seconds, []

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def add_task(self, description: str, total: float | None = 100.0, completed: float = 0, visible: bool = True, **fields) -> int:
        self.tasks.append(_Task(description, total, completed, visible, fields, initial=completed))
        return len(self.tasks) - 1

    def reset(
        self,
        task_id: int,
        *,
        total: float | None = None,
        completed: float = 0,
        visible: bool | None = None,
        description: str | None = None,
        **fields,
    ) -> None:
        """rich's reset: the task starts over (clock and count), e.g. the next step's update."""
        task = self.tasks[task_id]
        task.start, task.last_line, task.completed, task.initial = time.perf_counter(), float("-inf"), completed, completed
        task.total = total if total is not None else task.total
        task.visible = visible if visible is not None else task.visible
        task.description = description or task.description
        task.fields.update(fields)

    def update(
        self,
        task_id: int,
        *,
        advance: float | None = None,
        completed: float | None = None,
        total: float | None = None,
        visible: bool | None = None,
        description: str | None = None,
        **fields,
    ) -> None:
        task = self.tasks[task_id]
        task.completed = completed if completed is not None else task.completed + (advance or 0)
        task.total = total if total is not None else task.total
        task.visible = visible if visible is not None else task.visible
        task.description = description or task.description
        task.fields.update(fields)
        now = time.perf_counter()
        finished = task.total is not None and task.completed >= task.total
        if task.visible and (finished or now - task.last_line >= self.every_seconds):
            task.last_line = now
            self.stream.write(plain_line(task, now) + "\n")
            self.stream.flush()


def plain_line(task: _Task, now: float) -> str:
    elapsed = now - task.start
    parts = [time.strftime("%H:%M:%S"), task.description, f"{task.completed:g}" + (f"/{task.total:g}" if task.total else "")]
    if task.total:
        parts.append(f"({100 * task.completed / task.total:.0f}%)")
    parts.append(f"elapsed {_clock(elapsed)}")
    if task.total and task.initial < task.completed < task.total:
        parts.append(f"ETA {_clock(elapsed * (task.total - task.completed) / (task.completed - task.initial))}")
    parts += [str(value) for value in task.fields.values() if value != ""]
    return " ".join(parts)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
