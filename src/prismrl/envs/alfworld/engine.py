"""`AlfWorldEnv`: the Env protocol on the real ALFWorld text engine (textworld + alfworld wrappers).

Games are read from a data folder in the official layout, whether downloaded (`alfworld-download`)
or generated offline (`prismrl.envs.alfworld.generate`):

    <data_dir>/json_2.1.1/<split>/<task_type>-<obj>-<mrecep>-<recep>-<scene>/<trial>/game.tw-pddl

Task ids are the game's folder relative to `json_2.1.1`, split first:
    "train/pick_heat_then_place_in_recep-Potato-None-SinkBasin-14/trial_T20190908_231731_054988"

Like alfworld's own loader, `tasks` leaves out movable-receptacle and sliced tasks and games marked
unsolvable, and keeps the six ALFWorld task types (read from the folder name, as alfworld names
them). Each game is registered once with `textworld.gym.register_game` and the official wrappers
(AlfredDemangler, AlfredInfos, AlfredExpert), and kept for reuse. A reset re-reads the game and
translates its PDDL problem: 2-3 s on the official fixture; generated kitchen games can take
longer, because the planner expert plans from the start state during reset.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import textworld.gym
from alfworld.agents.environment.alfred_tw_env import TASK_TYPES as ALFWORLD_TASK_TYPES

from prismrl.envs.alfworld.expert import PrivateRandom, check_expert, expert_thought, request_infos, wrappers
from prismrl.errors import ConfigError, UnknownName

# pick_and_place_simple, look_at_obj_in_light, pick_clean_then_place_in_recep,
# pick_heat_then_place_in_recep, pick_cool_then_place_in_recep, pick_two_obj_and_place
TASK_TYPES: tuple[str, ...] = tuple(ALFWORLD_TASK_TYPES[i] for i in sorted(ALFWORLD_TASK_TYPES))
SPLITS = ("train", "valid_seen", "valid_unseen")
GAME_FILE = "game.tw-pddl"
_GOAL_MARK = "Your task is to: "


class AlfWorldEnv:
    name = "alfworld"

    def __init__(
        self, data_dir: str | os.PathLike | None = None, expert: str | None = "planner", max_steps: int = 50, cache_size: int = 8
    ) -> None:
        """`data_dir` holds json_2.1.1/ (or is it); default: $ALFWORLD_DATA.

        `expert` is alfworld's "planner" (Fast Downward, shortest plans) or "handcoded" (a rule
        policy that explores). The planner replans after *every* step, the agent's too, which
        costs 0.1-2 s a step; None turns the expert off for rollouts that never ask it.
        `max_steps` ends an episode unwon; `cache_size` registered games are kept for reuse.
        """
        data_dir = data_dir or os.environ.get("ALFWORLD_DATA")
        if not data_dir:
            raise ConfigError("AlfWorldEnv needs data_dir or $ALFWORLD_DATA (a folder holding json_2.1.1/)")
        data_dir = Path(data_dir).expanduser()
        self.root = data_dir / "json_2.1.1" if (data_dir / "json_2.1.1").is_dir() else data_dir
        self.expert = None if expert is None else check_expert(expert)
        self.max_steps = max_steps
        self._cache_size = cache_size
        self._tasks: dict[str, list[str]] = {}
        self._games: OrderedDict[str, Any] = OrderedDict()  # game file -> registered gym env
        self._env = None
        self._random: PrivateRandom | None = None
        self._task_id: str | None = None
        self._info: dict[str, Any] = {}
        self._goal = ""
        self._steps = 0

    # ---------------------------------------------------------------- tasks

    def tasks(self, split: str) -> list[str]:
        if split not in self._tasks:
            self._tasks[split] = _scan(self.root, split)
        return list(self._tasks[split])

    # ---------------------------------------------------------------- episodes

    def reset(self, task_id: str) -> tuple[str, dict[str, Any]]:
        split = task_id.split("/", 1)[0]
        if split not in SPLITS or task_id not in set(self.tasks(split)):
            raise UnknownName(f"unknown ALFWorld task id {task_id!r} (not a playable game under {self.root})")
        self._env = self._game(str(self.root / task_id / GAME_FILE))
        # the handcoded expert draws from `random`: one private stream per task keeps it reproducible
        self._random = PrivateRandom(zlib.crc32(task_id.encode()))
        with self._random.active():
            obs, raw = self._env.reset()
        self._task_id, self._steps = task_id, 0  # before _public_info, which reads them
        self._goal = obs.split(_GOAL_MARK, 1)[1].strip().rstrip(".") if _GOAL_MARK in obs else ""
        self._info = self._public_info(raw)
        return obs, dict(self._info)

    def step(self, action: str) -> tuple[str, float, bool, dict[str, Any]]:
        if self._env is None:
            raise RuntimeError("call reset(task_id) before step()")
        with self._random.active():
            obs, _score, done, raw = self._env.step(action)
        self._steps += 1
        self._info = self._public_info(raw)
        # the step cap also ends the episode (done), but only a reached goal earns the reward
        return obs, 1.0 if self._info["won"] else 0.0, bool(done), dict(self._info)

    def expert_step(self) -> tuple[str, str]:
        if self._env is None:
            raise RuntimeError("call reset(task_id) before expert_step()")
        if self.expert is None:
            raise RuntimeError("this AlfWorldEnv was made with expert=None")
        plan = self._info.get("expert_plan") or []
        # an empty plan means the goal is reached or the planner finds none from here
        action = plan[0] if plan else "look"
        thought = expert_thought(action, self._goal, first=self._steps == 0, next_action=plan[1] if len(plan) > 1 else None)
        return thought, action

    def close(self) -> None:
        for env in self._games.values():
            env.close()
        self._games.clear()
        self._env = None

    # ---------------------------------------------------------------- helpers

    def _game(self, gamefile: str):
        if gamefile in self._games:
            self._games.move_to_end(gamefile)
            return self._games[gamefile]
        env_id = textworld.gym.register_game(gamefile, request_infos(), max_episode_steps=self.max_steps, wrappers=wrappers(self.expert))
        self._games[gamefile] = env = textworld.gym.make(env_id)
        # textworld's registry is global and would keep every game's wrapper stack alive
        textworld.gym.registry.pop(env_id, None)
        while len(self._games) > self._cache_size:
            self._games.popitem(last=False)[1].close()
        return env

    def _public_info(self, raw: dict[str, Any]) -> dict[str, Any]:
        return {
            "won": bool(raw["won"]),
            "task_type": self._task_id.split("/")[1].split("-", 1)[0],  # the folder name starts with it
            "admissible": list(raw["admissible_commands"]),
            "expert_plan": list(raw.get("extra.expert_plan") or []),
            "goal": self._goal,
            "task_id": self._task_id,
            "steps": self._steps,
        }


def _scan(root: Path, split: str) -> list[str]:
    """Playable games of a split, sorted; the same filters as alfworld's AlfredTWEnv."""
    if split not in SPLITS:
        raise UnknownName(f"unknown ALFWorld split {split!r}; expected one of {SPLITS}")
    base = root / split
    if not base.is_dir():
        return []
    found = []
    for gamefile in sorted(base.glob(f"*/*/{GAME_FILE}")):
        trial = gamefile.parent
        task = trial.parent.name
        if "movable" in task or "Sliced" in task or task.split("-", 1)[0] not in TASK_TYPES:
            continue
        if not (trial / "traj_data.json").exists():
            continue
        with open(gamefile) as f:
            if not json.load(f).get("solvable"):
                continue
        found.append(f"{split}/{task}/{trial.name}")
    return found
