"""The ALFWorld expert: alfworld's own AlfredExpert wrapper, plus a short thought for each action.

Two experts ship with alfworld, and both report the next action as `extra.expert_plan[0]`:
- "planner" (default): Fast Downward replans from the true state at every step. Shortest plans
  (6 steps on the fixture game), but it knows where everything is, so it never searches.
- "handcoded": a rule policy that explores like a person (16 steps on the fixture game). It is
  weaker on generated games: it won 53 of 60 (pick_two_obj_and_place only 3 of 10: after placing
  the first object it keeps revisiting where it found it). It draws from Python's global
  `random`; `PrivateRandom` keeps that reproducible.

The engine and the generator build their wrapper stacks here so both play by the same rules.
"""

from __future__ import annotations

import random
import re
from contextlib import contextmanager
from typing import Iterator

import textworld
from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredExpert, AlfredInfos
from textworld.envs import PddlEnv

from prismrl.errors import ConfigError

EXPERT_TYPES = ("planner", "handcoded")


def check_expert(expert_type: str) -> str:
    if expert_type not in EXPERT_TYPES:
        raise ConfigError(f"unknown ALFWorld expert {expert_type!r}; expected one of {EXPERT_TYPES}")
    return expert_type


def request_infos() -> textworld.EnvInfos:
    return textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile", "expert_plan"])


def wrappers(expert_type: str | None) -> list:
    """The official wrapper list for `textworld.gym.register_game` (no expert for None).

    Fresh instances on every call: textworld reuses a wrapper *instance* as-is, so two games
    registered with one list would share the demangler and the expert's state.
    """
    stack = [AlfredDemangler(shuffle=False), AlfredInfos]
    return stack if expert_type is None else stack + [AlfredExpert(expert_type=check_expert(expert_type))]


def make_expert_env(expert_type: str = "planner") -> textworld.Environment:
    """The same stack without the gym layer (load + reset + step), as `alfworld-generate` uses."""
    env = AlfredInfos(AlfredDemangler(PddlEnv(request_infos()), shuffle=False))
    return AlfredExpert(env, expert_type=check_expert(expert_type))


class PrivateRandom:
    """A random stream swapped into the global `random` module only while the expert runs.

    The handcoded expert calls `random.choice`; giving each episode its own seeded stream makes
    episodes reproducible without touching the caller's global random state.
    """

    def __init__(self, seed: int) -> None:
        self._state = random.Random(seed).getstate()

    @contextmanager
    def active(self) -> Iterator[None]:
        outer = random.getstate()
        random.setstate(self._state)
        try:
            yield
        finally:
            self._state = random.getstate()
            random.setstate(outer)


@contextmanager
def isolated_random(seed: int) -> Iterator[None]:
    with PrivateRandom(seed).active():
        yield


_VERB_THOUGHTS = [
    (re.compile(r"^go to (?P<r>.+)$"), "I go to the {r}."),
    (re.compile(r"^open (?P<r>.+)$"), "The {r} is closed; I open it to look inside."),
    (re.compile(r"^close (?P<r>.+)$"), "I close the {r}."),
    (re.compile(r"^take (?P<o>.+) from (?P<r>.+)$"), "I take the {o} from the {r}."),
    (re.compile(r"^move (?P<o>.+) to (?P<r>.+)$"), "I put the {o} in/on the {r}."),
    (re.compile(r"^heat (?P<o>.+) with (?P<r>.+)$"), "I heat the {o} with the {r}."),
    (re.compile(r"^cool (?P<o>.+) with (?P<r>.+)$"), "I cool the {o} with the {r}."),
    (re.compile(r"^clean (?P<o>.+) with (?P<r>.+)$"), "I clean the {o} with the {r}."),
    (re.compile(r"^use (?P<o>.+)$"), "I turn on the {o} to look at what I hold in its light."),
    (re.compile(r"^examine (?P<o>.+)$"), "I examine the {o}."),
    (re.compile(r"^inventory$"), "I check what I am carrying."),
]
# A move is explained by what it is for: the action that follows it in the plan ({dest} is where
# the agent goes).
_GOTO_THOUGHTS = [
    (re.compile(r"^take (?P<o>.+) from (?P<r>.+)$"), "I need the {o}; I go to the {dest} to take it."),
    (re.compile(r"^open (?P<r>.+)$"), "What I need is inside the {r}; I go there to open it."),
    (re.compile(r"^move (?P<o>.+) to (?P<r>.+)$"), "I carry the {o} to the {dest}."),
    (re.compile(r"^(?P<verb>heat|cool|clean) (?P<o>.+) with (?P<r>.+)$"), "I go to the {dest} to {verb} the {o}."),
    (re.compile(r"^use (?P<o>.+)$"), "I go to the {dest}, where the {o} is."),
]


def _fill(templates, action: str, **extra: str) -> str | None:
    for pattern, template in templates:
        match = pattern.match(action.strip())
        if match:
            return template.format(**match.groupdict(), **extra)
    return None


def expert_thought(action: str, goal: str = "", first: bool = False, next_action: str | None = None) -> str:
    """A short templated thought for the expert's `action`.

    A "go to" is explained by `next_action` (the plan's following step) when there is one; the
    task is restated on the first turn.
    """
    thought = None
    if next_action and action.startswith("go to "):
        thought = _fill(_GOTO_THOUGHTS, next_action, dest=action[len("go to ") :].strip())
    thought = thought or _fill(_VERB_THOUGHTS, action) or "I look around to see where I am."
    if first and goal:
        thought = f"My task is to {goal}. {thought}"
    return thought
