"""Mirror houses: a testbed whose conflict with the model's prior is known by construction
(issue 13's test of PRISM's premise).

Each task is a walk through 2-3 rooms to an object, then `take` it. Every room says where the
object is ("The key is north of here.") and the agent answers `go <direction>`. In a plain house
that is what it should say. In a mirror house every direction leads the opposite way (the system
prompt states the rule, the first observation names the house), so the expert says `go south`
where the text says north: each of its moves contradicts the literal reading a language model
brings. Which trajectories conflict with the prior is therefore known (`task_type` "mirror"), and
a router's ability to find them can be measured (ROC AUC) and its downstream effect compared.

A wrong move wastes the turn ("a dead end; you come back"); `take` where the object is not does
too. Reward 1 for taking the object, else 0. Task ids are `mirror-<i>`; train and test are
disjoint ranges; a task's house, rooms, object and directions are drawn from its index alone.
"""

from __future__ import annotations

import math
import random

from prismrl.errors import UnknownName

DIRECTIONS = ("north", "south", "east", "west")
OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}
ROOMS = ("kitchen", "hall", "study", "pantry", "bedroom", "cellar", "library", "workshop", "parlour", "attic", "garden room", "gallery")
OBJECTS = ("key", "lamp", "book", "coin", "map", "cup", "ring", "candle", "box", "scarf")
SPLITS = ("train", "test")


class MirrorHouseEnv:
    name = "mirror"

    def __init__(self, n_train: int = 256, n_test: int = 128, mirror_share: float = 0.5, max_steps: int = 8):
        self.n = {"train": n_train, "test": n_test}
        self.mirror_share = mirror_share
        self.max_steps = max_steps
        self._task: dict | None = None

    def tasks(self, split: str) -> list[str]:
        if split not in SPLITS:
            raise UnknownName(f"unknown split {split!r}; use train or test")
        start = 0 if split == "train" else self.n["train"]
        return [f"mirror-{i}" for i in range(start, start + self.n[split])]

    def task(self, task_id: str) -> dict:
        """The task's house, rooms, object and the directions of its walk (the text's, not the moves')."""
        try:
            index = int(task_id.removeprefix("mirror-"))
        except ValueError:
            raise UnknownName(f"unknown mirror task id {task_id!r}; expected mirror-<n>") from None
        if not 0 <= index < self.n["train"] + self.n["test"]:
            raise UnknownName(f"unknown mirror task id {task_id!r}: there are {self.n['train'] + self.n['test']} tasks")
        rng = random.Random(index)
        length = rng.choice((2, 3))
        directions = [rng.choice(DIRECTIONS)]
        while len(directions) < length:  # never straight back: the walk would revisit a room
            directions.append(rng.choice([d for d in DIRECTIONS if d != OPPOSITE[directions[-1]]]))
        return {
            # Spread evenly, not drawn: any run of consecutive ids holds the share of mirror houses to
            # within one task (at 0.5 the odd ids), so a split is not 40 % or 60 % mirrors by chance.
            "mirror": math.floor((index + 1) * self.mirror_share) > math.floor(index * self.mirror_share),
            "rooms": rng.sample(ROOMS, length + 1),
            "object": rng.choice(OBJECTS),
            "directions": directions,
        }

    def reset(self, task_id: str):
        self._task = {**self.task(task_id), "at": 0, "steps": 0}
        house = "Mirror House" if self._task["mirror"] else "Plain House"
        return f"You are in the {house}. {self._describe()}", self._info(won=False)

    def _describe(self) -> str:
        t = self._task
        room, thing = t["rooms"][t["at"]], t["object"]
        if t["at"] == len(t["directions"]):
            return f"You are in the {room}. The {thing} is here."
        return f"You are in the {room}. The {thing} is {t['directions'][t['at']]} of here."

    def _info(self, won: bool) -> dict:
        t = self._task
        at_object = t["at"] == len(t["directions"])
        admissible = [f"take {t['object']}"] if at_object else [f"go {d}" for d in DIRECTIONS]
        return {"won": won, "task_type": "mirror" if t["mirror"] else "plain", "admissible": admissible}

    def _move(self, t: dict) -> str:
        """The direction the agent must say to follow the text's direction from here."""
        written = t["directions"][t["at"]]
        return OPPOSITE[written] if t["mirror"] else written

    def step(self, action: str):
        if self._task is None:
            raise RuntimeError("call reset before step")
        t = self._task
        t["steps"] += 1
        words = action.lower().replace(".", " ").split()
        won = False
        if t["at"] < len(t["directions"]) and words[:1] == ["go"] and self._move(t) in words[1:2]:
            t["at"] += 1
            observation = self._describe()
        elif t["at"] == len(t["directions"]) and words[:1] == ["take"] and t["object"] in words:
            won = True
            observation = f"You take the {t['object']}. Well done!"
        elif words[:1] == ["go"] and words[1:2] and words[1] in DIRECTIONS:
            observation = f"That way is a dead end; you come back. {self._describe()}"
        elif words[:1] == ["take"]:
            observation = f"There is no {' '.join(words[1:]) or 'such thing'} here. {self._describe()}"
        else:
            observation = f"Nothing happens. {self._describe()}"
        done = won or t["steps"] >= self.max_steps
        return observation, 1.0 if won else 0.0, done, self._info(won)

    def expert_step(self) -> tuple[str, str]:
        t = self._task
        if t["at"] == len(t["directions"]):
            return f"The {t['object']} is here.", f"take {t['object']}"
        # One template for both houses, so that the two kinds of trajectory differ only in the house
        # named and in whether the move agrees with the text, not in how the expert words it.
        house = "Mirror House" if t["mirror"] else "Plain House"
        written, move = t["directions"][t["at"]], self._move(t)
        return f"This is the {house}, so to reach what is {written} I must go {move}.", f"go {move}"

    def close(self) -> None:
        self._task = None
