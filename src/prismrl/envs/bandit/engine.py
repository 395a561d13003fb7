"""Two doors, one step. The treasure is always behind the `best` door (default "left"), which the
agent is not told: only reward reveals it. An RL run that works must learn to open it; one that
does not, cannot. Task ids are `bandit-<i>`; they differ only in the room description.
"""

from __future__ import annotations

from prismrl.errors import UnknownName

ROOMS = [
    "a dusty hall",
    "a quiet library",
    "a cold cellar",
    "a bright kitchen",
    "a long corridor",
    "an old chapel",
    "a tiny attic",
    "a grand ballroom",
]


class BanditEnv:
    name = "bandit"

    def __init__(self, n_tasks: int = 64, best: str = "left"):
        self.n_tasks = n_tasks
        self.best = best
        self._task: str | None = None

    def tasks(self, split: str) -> list[str]:
        if split not in ("train", "test"):
            raise UnknownName(f"unknown split {split!r}; use train or test")
        offset = 0 if split == "train" else self.n_tasks
        return [f"bandit-{i}" for i in range(offset, offset + self.n_tasks)]

    def reset(self, task_id: str):
        try:
            index = int(task_id.removeprefix("bandit-"))
        except ValueError:
            raise UnknownName(f"unknown bandit task id {task_id!r}; expected bandit-<n>") from None
        self._task = task_id
        room = ROOMS[index % len(ROOMS)]
        observation = f"You are in {room}. There are two doors. Open one: left or right."
        return observation, {"won": False, "task_type": "bandit", "admissible": ["open left", "open right"]}

    def step(self, action: str):
        if self._task is None:
            raise RuntimeError("call reset before step")
        words = action.lower().split()
        chosen = next((w for w in words if w in ("left", "right")), None)
        won = chosen == self.best
        observation = "You found the treasure!" if won else ("The room is empty." if chosen else "Nothing happens.")
        info = {"won": won, "task_type": "bandit", "admissible": ["open left", "open right"]}
        return observation, 1.0 if won else 0.0, True, info

    def expert_step(self) -> tuple[str, str]:
        return "The treasure has always been behind this door.", f"open {self.best}"

    def close(self) -> None:
        self._task = None
