"""A tiny test-only env whose task ids say how it misbehaves (used by test_pool.py).

Task ids: `ok-<n>` (won after n steps), `raise-step-<k>` (step k raises ValueError),
`raise-reset`, `exit-step-<k>` (step k kills its process with os._exit), `hang-step-<k>`
(step k sleeps for an hour). Imported by module name in spawned pool workers.
"""

from __future__ import annotations

import os
import time


class CrashyEnv:
    name = "crashy"

    def __init__(self, prefix: str = "obs"):
        self.prefix = prefix
        self.task_id = None
        self.steps = 0
        self.pid = os.getpid()

    def tasks(self, split: str) -> list[str]:
        return [f"ok-{n}" for n in range(1, 5)]

    def reset(self, task_id: str):
        if task_id == "raise-reset":
            raise RuntimeError(f"cannot start {task_id}")
        self.task_id, self.steps = task_id, 0
        return f"{self.prefix} {task_id} start", {"won": False, "pid": self.pid}

    def step(self, action: str):
        self.steps += 1
        kind, _, n = self.task_id.rpartition("-")
        if kind == "raise-step" and self.steps == int(n):
            raise ValueError(f"boom at step {self.steps}")
        if kind == "exit-step" and self.steps == int(n):
            os._exit(7)
        if kind == "hang-step" and self.steps == int(n):
            time.sleep(3600)
        won = kind == "ok" and self.steps >= int(n)
        done = won or self.steps >= 10
        return f"{self.prefix} {self.task_id} step {self.steps}: {action}", float(won), done, {"won": won, "pid": self.pid}

    def expert_step(self):
        return f"thinking {self.steps}", f"act-{self.steps}"

    def close(self) -> None:
        pass
