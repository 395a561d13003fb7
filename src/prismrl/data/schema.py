"""The one trajectory schema every phase reads and writes.

A trajectory is an expert episode in one environment instance (`task_id`), stored as OpenAI-style
chat messages. Agent turns are `assistant` messages; observations are `user` messages.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from prismrl.errors import InputError

ROLES = ("system", "user", "assistant")


class InvalidTrajectory(InputError):
    """A trajectory that breaks the schema; `where` names the file:line or id it came from."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass
class Trajectory:
    id: str
    task_id: str
    messages: list[dict[str, Any]]
    env: str | None = None
    reward: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}

    @classmethod
    def from_dict(cls, record: Any, where: str = "<record>") -> "Trajectory":
        """Validate a raw record and build a Trajectory, or raise InvalidTrajectory naming `where`."""
        if not isinstance(record, dict):
            raise InvalidTrajectory(where, f"expected a JSON object, got {type(record).__name__}")
        ident = record.get("id")
        if ident is None or (isinstance(ident, str) and not ident.strip()):
            raise InvalidTrajectory(where, "missing field 'id'")
        where = f"{where} (id {ident!r})"
        messages = record.get("messages")
        if messages is None:
            raise InvalidTrajectory(where, "missing field 'messages'")
        if not isinstance(messages, list) or not messages:
            raise InvalidTrajectory(where, "'messages' must be a non-empty list")
        clean = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise InvalidTrajectory(where, f"message {i} is not an object")
            role, content = message.get("role"), message.get("content")
            if role not in ROLES:
                raise InvalidTrajectory(where, f"message {i} has role {role!r}; expected one of {ROLES}")
            if not isinstance(content, str) or not content.strip():
                raise InvalidTrajectory(where, f"message {i} ({role}) has empty or non-text content")
            extra = {k: v for k, v in message.items() if k not in ("role", "content")}
            clean.append({"role": role, "content": content, **extra})
        if not any(m["role"] == "assistant" for m in clean):
            raise InvalidTrajectory(where, "no assistant turn: nothing to learn from")
        reward = record.get("reward")
        if reward is not None and not isinstance(reward, (int, float)):
            raise InvalidTrajectory(where, f"'reward' must be a number, got {reward!r}")
        meta = record.get("meta") or {}
        if not isinstance(meta, dict):
            raise InvalidTrajectory(where, "'meta' must be an object")
        task_id = record.get("task_id", ident)
        return cls(
            id=str(ident),
            task_id=str(task_id),
            messages=clean,
            env=record.get("env"),
            reward=None if reward is None else float(reward),
            meta=meta,
        )
