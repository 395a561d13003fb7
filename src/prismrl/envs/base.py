"""The environment protocol every engine adapter implements, and the registry behind `make`.

An environment is a set of task instances (`tasks(split)`), each reset to a deterministic start
state (`reset(task_id)`). Actions and observations are plain text. Every env also exposes its
expert (`expert_step`) so expert trajectories and agent rollouts share one code path.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

from prismrl.errors import UnknownName

StepResult = tuple[str, float, bool, dict[str, Any]]


@runtime_checkable
class Env(Protocol):
    name: str

    def tasks(self, split: str) -> list[str]:
        """Task ids of a split (e.g. train, valid_seen, valid_unseen, test)."""

    def reset(self, task_id: str) -> tuple[str, dict[str, Any]]:
        """Start the episode of `task_id`; returns (observation, info). Unknown id → KeyError naming it."""

    def step(self, action: str) -> StepResult:
        """Apply one text action; info has `won`, `task_type` and, where the engine has it, `admissible`."""

    def expert_step(self) -> tuple[str, str]:
        """(thought, action) the expert takes in the current state."""

    def close(self) -> None: ...


# name → "module:factory"; modules are imported lazily so a missing optional engine
# only fails when that environment is asked for.
REGISTRY: dict[str, str] = {
    "twx": "prismrl.envs.twx.engine:TextWorldExpressEnv",
    "webshop": "prismrl.envs.webshop.engine:WebShopEnv",
    "alfworld": "prismrl.envs.alfworld.engine:AlfWorldEnv",
    "bandit": "prismrl.envs.bandit.engine:BanditEnv",
    "mirror": "prismrl.envs.mirror.engine:MirrorHouseEnv",
}


# Each environment's cap on agent steps per episode: verl-agent's env.max_steps (ALFWorld 50,
# WebShop 15), which the engines' own `max_steps` defaults also are. Rollouts (RL, evaluation,
# pass rates), expert data and the verl-agent export all take it from here unless told otherwise.
EPISODE_STEP_CAPS: dict[str, int] = {"alfworld": 50, "webshop": 15, "twx": 50, "bandit": 1, "mirror": 8}


def episode_step_cap(name: str) -> int:
    if name not in EPISODE_STEP_CAPS:
        raise UnknownName(f"unknown environment {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return EPISODE_STEP_CAPS[name]


# Options for envs that only an agent plays (RL, evaluation): ALFWorld's planner expert replans
# after every step (0.1-2 s), which a rollout that never asks the expert should not pay for.
AGENT_ONLY_OPTIONS: dict[str, dict[str, Any]] = {"alfworld": {"expert": None}}


def agent_env_config(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    return {**AGENT_ONLY_OPTIONS.get(name, {}), **cfg}


def make(name: str, **cfg: Any) -> Env:
    if name not in REGISTRY:
        raise UnknownName(f"unknown environment {name!r}; known: {', '.join(sorted(REGISTRY))}")
    module_name, factory = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), factory)(**cfg)


def prompt_module(name: str):
    """The env's prompt module (`SYSTEM_PROMPT`, `observation_message`)."""
    if name not in REGISTRY:
        raise UnknownName(f"unknown environment {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return importlib.import_module(REGISTRY[name].split(":")[0].rsplit(".", 1)[0] + ".prompt")
