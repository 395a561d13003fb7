"""The ReAct turn format shared by experts and agents: a short thought, then one action.

    Thought: I need a knife to slice the apple.
    Action: take knife 1 from countertop 2

Experts write turns with `format_turn`; agents' generations are read with `parse_action`, which
flags turns without a well-formed action (the RL invalid-action penalty uses the flag).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ACTION = re.compile(r"^\s*Action\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def format_turn(thought: str, action: str) -> str:
    return f"Thought: {thought.strip()}\nAction: {action.strip()}"


@dataclass(frozen=True)
class ParsedAction:
    action: str
    valid: bool


def parse_action(text: str) -> ParsedAction:
    """The last `Action:` line of a generation; invalid when there is none or it is empty."""
    found = _ACTION.findall(text)
    if not found:
        fallback = text.strip().splitlines()[-1].strip() if text.strip() else ""
        return ParsedAction(action=fallback, valid=False)
    return ParsedAction(action=found[-1].strip(), valid=True)
