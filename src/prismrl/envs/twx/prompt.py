"""The agent's instructions and observation turns for TextWorld-Express."""

from __future__ import annotations

from typing import Any

SYSTEM_PROMPT = (
    "You are an agent in a text-based game. Each turn you see an observation and reply with one "
    "short thought and one action, exactly in this form:\n"
    "Thought: <one sentence about what to do next>\n"
    "Action: <one command from the list of valid actions>"
)


def observation_message(observation: str, info: dict[str, Any]) -> str:
    actions = info.get("admissible") or []
    listed = f"\nValid actions: {', '.join(sorted(actions))}" if actions and len(actions) <= 40 else ""
    return f"{observation.strip()}{listed}"
