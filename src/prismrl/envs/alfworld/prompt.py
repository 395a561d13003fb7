"""What an ALFWorld agent is told: the system prompt and the per-turn observation message.

The command grammar is the installed engine's (alfworld 0.4.2, `alfworld/data/alfred.twl2`):
objects go in or on receptacles with `move X to Y`. The ReAct and ETO prompts, and most published
ALFWorld numbers, predate alfworld 0.4.0 and say `put X in/on Y`, which this engine answers with
"Nothing happens." (The grammar travels inside each game file; the 0.4 data and the generated
games both say `move`.)
"""

from __future__ import annotations

from typing import Any

from prismrl.envs.react import format_turn

_BANNER = "-= Welcome to TextWorld, ALFRED! =-"

SYSTEM_PROMPT = f"""You are an agent in a household, acting through text commands to finish a task (ALFWorld).
Each turn you see an observation. Answer with one short thought and then exactly one command:

{format_turn("I need the potato; it may be on a countertop.", "go to countertop 1")}

Commands (use the names exactly as the observations write them, with their numbers):
  go to <receptacle>                  e.g. go to cabinet 3
  open <receptacle> / close <receptacle>
  take <object> from <receptacle>     e.g. take apple 1 from countertop 2
  move <object> to <receptacle>       put the object you hold in or on a receptacle
  heat <object> with <microwave>      cool <object> with <fridge>      clean <object> with <sinkbasin>
  use <lamp>                          turn a desklamp or floorlamp on
  examine <object or receptacle>      look      inventory
You hold at most one object. Closed receptacles must be opened before you can see or take what is inside.
To look at an object under a lamp, hold the object and use the lamp while standing at it.
A command the game does not understand, or cannot do, answers "Nothing happens."
"""


def observation_message(observation: str, info: dict[str, Any]) -> str:
    """The observation as the agent reads it: without the TextWorld banner, plus the admissible
    commands when `info` has them (drop info["admissible"] to hide them)."""
    text = observation.replace(_BANNER, "").strip()
    admissible = info.get("admissible")
    if admissible:
        text += "\nAdmissible commands: " + ", ".join(admissible)
    return text
