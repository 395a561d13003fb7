"""What the agent is told in the mirror houses: the rule that inverts a familiar convention."""

from __future__ import annotations

from typing import Any

SYSTEM_PROMPT = (
    "You are walking through a house to pick up an object. Each room tells you in which direction the "
    "object lies. In the Plain House you go the way the room tells you. In the Mirror House every "
    "direction leads the opposite way: to reach what is north you must go south, to reach what is east "
    "you must go west. Once the object is in your room, take it.\n"
    "Reply every turn in exactly this format:\n"
    "Thought: <one short sentence>\n"
    "Action: <go north, go south, go east, go west, or take <object>>"
)


def observation_message(observation: str, info: dict[str, Any]) -> str:
    actions = info.get("admissible") or []
    return f"Observation: {observation}" + (f"\nAvailable actions: {', '.join(actions)}" if actions else "")
