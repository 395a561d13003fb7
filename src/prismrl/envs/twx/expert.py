"""Short templated thoughts for the TextWorld-Express gold actions, keyed by the action's verb."""

from __future__ import annotations

TEMPLATES = {
    "look": "I should look around to see what is here.",
    "take": "I need the {rest}, so I will take it.",
    "read": "The {rest} should tell me what to do.",
    "open": "The {rest} is closed; opening it may show what I need.",
    "close": "I am done with the {rest}, so I will close it.",
    "slice": "The recipe needs the {rest} sliced.",
    "dice": "The recipe needs the {rest} diced.",
    "chop": "The recipe needs the {rest} chopped.",
    "cook": "The recipe says to {action}.",
    "prepare": "All ingredients are ready, so I can prepare the meal.",
    "eat": "The meal is ready; eating it completes the task.",
    "move": "I will {action} to reach the next place.",
    "put": "The task wants this put away: {action}.",
    "inventory": "Let me check what I am carrying.",
}


def thought_for(action: str) -> str:
    verb, _, rest = action.partition(" ")
    return TEMPLATES.get(verb, "The next step toward the goal is to {action}.").format(action=action, rest=rest)
