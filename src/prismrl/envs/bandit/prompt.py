"""Prompt for the two-door bandit."""

from __future__ import annotations

from typing import Any

SYSTEM_PROMPT = "You are an agent. Reply with one thought and one action:\nThought: <thought>\nAction: <action>"


def observation_message(observation: str, info: dict[str, Any]) -> str:
    return observation
