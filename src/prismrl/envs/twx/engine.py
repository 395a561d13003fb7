"""Adapter over the `textworld-express` engine (a JVM behind py4j).

Task ids are `<game>-<fold>-<seed>`, e.g. `cookingworld-train-17`; the seed fixes the whole
game, so an id always resets to the same start. Splits map to the engine's folds:
train → train, valid/dev → dev, test → test.
"""

from __future__ import annotations

import shutil
from typing import Any

from prismrl.envs.twx.expert import thought_for
from prismrl.errors import SetupError, UnknownName

FOLDS = {"train": "train", "dev": "dev", "valid": "dev", "test": "test"}
# Small games by default: short gold paths keep expert trajectories within a CPU-friendly context.
DEFAULT_PARAMS = {
    "cookingworld": "numLocations=1,numIngredients=2,numDistractorItems=2,includeDoors=0,limitInventorySize=0",
    "twc": "numLocations=1,numItemsToPutAway=2,includeDoors=0,limitInventorySize=0",
    "coin": "numLocations=3,numDistractorItems=0,includeDoors=0,limitInventorySize=0",
}


class TextWorldExpressEnv:
    name = "twx"

    def __init__(
        self,
        games: tuple[str, ...] | list[str] = ("cookingworld", "twc", "coin"),
        game_params: dict[str, str] | None = None,
        max_steps: int = 50,
        tasks_per_split: int | None = None,
    ):
        if shutil.which("java") is None:
            raise SetupError("TextWorld-Express needs a Java runtime: apt-get install default-jre-headless")
        from textworld_express import TextWorldExpressEnv as Engine

        self.games = list(games)
        self.game_params = {**DEFAULT_PARAMS, **(game_params or {})}
        self.max_steps = max_steps
        self.tasks_per_split = tasks_per_split
        self._engine = Engine(envStepLimit=max_steps)
        self._gold: list[str] = []
        self._steps = 0
        self._game = ""

    def tasks(self, split: str) -> list[str]:
        """Task ids interleaved across games, so any prefix of the list is balanced."""
        fold = self._fold(split)
        per_game = []
        for game in self.games:
            self._engine.load(gameName=game, gameParams=self.game_params.get(game, ""))
            seeds = {
                "train": self._engine.getValidSeedsTrain,
                "dev": self._engine.getValidSeedsDev,
                "test": self._engine.getValidSeedsTest,
            }[fold]()
            per_game.append([f"{game}-{fold}-{seed}" for seed in seeds[: self.tasks_per_split]])
        return [task for group in zip(*per_game) for task in group]

    @staticmethod
    def _fold(split: str) -> str:
        if split not in FOLDS:
            raise UnknownName(f"unknown split {split!r}; use one of {sorted(FOLDS)}")
        return FOLDS[split]

    def _parse(self, task_id: str) -> tuple[str, str, int]:
        try:
            game, fold, seed = task_id.rsplit("-", 2)
            if game not in self.games or fold not in ("train", "dev", "test"):
                raise ValueError
            return game, fold, int(seed)
        except ValueError:
            raise UnknownName(
                f"unknown twx task id {task_id!r}; expected <game>-<train|dev|test>-<seed> with game in {self.games}"
            ) from None

    def reset(self, task_id: str) -> tuple[str, dict[str, Any]]:
        game, fold, seed = self._parse(task_id)
        observation, info = self._engine.reset(
            seed=seed, gameFold=fold, gameName=game, gameParams=self.game_params.get(game, ""), generateGoldPath=True
        )
        self._gold = list(self._engine.getGoldActionSequence())
        self._steps = 0
        self._game = game
        return f"{info['taskDescription']}\n\n{observation.strip()}", self._info(info)

    def _info(self, raw: dict[str, Any]) -> dict[str, Any]:
        return {
            "won": bool(raw["tasksuccess"]),
            "lost": bool(raw["taskfailure"]),
            "score": raw["score"],
            "task_type": self._game,
            "admissible": list(raw.get("validActions", [])),
        }

    def step(self, action: str):
        observation, _, done, raw = self._engine.step(action.strip())
        self._steps += 1
        info = self._info(raw)
        done = bool(done or info["won"] or info["lost"] or self._steps >= self.max_steps)
        return observation.strip(), 1.0 if info["won"] else 0.0, done, info

    def expert_step(self) -> tuple[str, str]:
        # The gold path is a fixed plan from the start state; the expert follows it in order.
        # Observations replay exactly for a task id, but the engine's gold path for `coin` may
        # differ between resets of the same game (it wanders at random): both paths win.
        if self._steps >= len(self._gold):
            return "The task should be complete; I will look around.", "look around"
        action = self._gold[self._steps]
        return thought_for(action), action

    def close(self) -> None:
        # The engine's own __del__ closes it again; a second close raises BrokenPipeError.
        if self._engine is not None:
            self._engine.close()
            self._engine = None
