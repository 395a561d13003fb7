"""Read and write trajectory files: the project's JSONL, Hugging Face datasets, ShareGPT/ETO, AgentGym.

Every record is validated on the way in. A bad record is an error naming `file:line` and id,
unless `skip_invalid` is set, in which case it is returned in the skipped list (never dropped
silently) so reports can show it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prismrl.data.schema import InvalidTrajectory, Trajectory
from prismrl.errors import ConfigError, MissingFile
from prismrl.fileio import atomic_dir, atomic_write_jsonl

SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


@dataclass(frozen=True)
class Skipped:
    where: str
    id: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "id": self.id, "reason": self.reason}


def from_sharegpt(record: dict[str, Any], where: str) -> dict[str, Any]:
    """ShareGPT / ETO (`conversations` of `from`/`value`) and AgentGym (adds a per-turn `loss`)
    records → the project schema. AgentGym's `loss: false` on an assistant turn is kept on the
    message and honoured by the formatter's loss mask."""
    turns = record.get("conversations")
    if not isinstance(turns, list):
        raise InvalidTrajectory(where, "'conversations' must be a list")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise InvalidTrajectory(where, f"conversation turn {i} is not an object")
        speaker = turn.get("from")
        if speaker not in SHAREGPT_ROLES:
            raise InvalidTrajectory(where, f"conversation turn {i} has from={speaker!r}; expected one of {sorted(SHAREGPT_ROLES)}")
        message = {"role": SHAREGPT_ROLES[speaker], "content": turn.get("value")}
        if "loss" in turn and message["role"] == "assistant":
            message["loss"] = bool(turn["loss"])
        messages.append(message)
    ident = record.get("id", record.get("item_id"))
    native = {"id": ident, "task_id": record.get("item_id", ident), "messages": messages}
    for key in ("env", "reward", "meta"):
        if key in record:
            native[key] = record[key]
    return native


def _records(path: Path) -> list[tuple[str, Any]]:
    """(where, raw record) pairs; a line that is not JSON becomes an InvalidTrajectory placeholder."""
    if path.is_dir():
        import datasets

        dataset = datasets.load_from_disk(str(path))
        return [(f"{path}[{i}]", _from_hf_row(row)) for i, row in enumerate(dataset)]
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" or text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidTrajectory(f"{path}:{e.lineno}", f"not valid JSON ({e.msg})") from None
        if not isinstance(rows, list):
            raise InvalidTrajectory(str(path), "a .json trajectory file must hold a list of records")
        return [(f"{path}[{i}]", row) for i, row in enumerate(rows)]
    pairs: list[tuple[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            pairs.append((where, json.loads(line)))
        except json.JSONDecodeError as e:
            pairs.append((where, InvalidTrajectory(where, f"malformed JSON ({e.msg})")))
    return pairs


def load_trajectories(path: str | Path, skip_invalid: bool = False) -> tuple[list[Trajectory], list[Skipped]]:
    """All trajectories of a file (JSONL, JSON list, ShareGPT/ETO/AgentGym) or a saved HF dataset."""
    path = Path(path)
    if not path.exists():
        raise MissingFile(f"trajectory file not found: {path}")
    trajectories: list[Trajectory] = []
    skipped: list[Skipped] = []
    first_seen: dict[str, str] = {}
    records = _records(path)
    if not records:
        raise InvalidTrajectory(str(path), "holds no trajectories")
    for where, raw in records:
        try:
            if isinstance(raw, InvalidTrajectory):
                raise raw
            if isinstance(raw, dict) and "messages" not in raw and "conversations" in raw:
                raw = from_sharegpt(raw, where)
            trajectory = Trajectory.from_dict(raw, where)
            if trajectory.id in first_seen:
                raise InvalidTrajectory(f"{where} (id {trajectory.id!r})", f"duplicate id, first seen at {first_seen[trajectory.id]}")
        except InvalidTrajectory as error:
            if not skip_invalid:
                raise
            ident = raw.get("id") if isinstance(raw, dict) else None
            skipped.append(Skipped(where=error.where, id=None if ident is None else str(ident), reason=error.reason))
            continue
        first_seen[trajectory.id] = where
        trajectories.append(trajectory)
    return trajectories, skipped


def save_trajectories(trajectories: list[Trajectory], path: str | Path, fmt: str = "jsonl") -> None:
    """Write atomically as project JSONL, ShareGPT JSON, or a Hugging Face dataset folder."""
    path = Path(path)
    if fmt == "jsonl":
        atomic_write_jsonl(path, (t.to_dict() for t in trajectories))
    elif fmt == "sharegpt":
        from prismrl.fileio import atomic_write_json

        atomic_write_json(path, [to_sharegpt(t) for t in trajectories])
    elif fmt == "hf":
        import datasets

        rows = [_to_hf_row(t) for t in trajectories]
        with atomic_dir(path) as staging:
            datasets.Dataset.from_list(rows).save_to_disk(str(staging))
    else:
        raise ConfigError(f"unknown format {fmt!r}; use jsonl, sharegpt or hf")


def _to_hf_row(trajectory: Trajectory) -> dict[str, Any]:
    # Arrow needs one type per column: every message gets a `loss` slot (None = default) and the
    # free-form `meta` travels as a JSON string.
    return {
        "id": trajectory.id,
        "task_id": trajectory.task_id,
        "env": trajectory.env,
        "reward": trajectory.reward,
        "messages": [{"role": m["role"], "content": m["content"], "loss": m.get("loss")} for m in trajectory.messages],
        "meta": json.dumps(trajectory.meta),
    }


def _from_hf_row(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    if isinstance(row.get("messages"), list):
        row["messages"] = [{k: v for k, v in m.items() if not (k == "loss" and v is None)} for m in row["messages"]]
    if isinstance(row.get("meta"), str):
        row["meta"] = json.loads(row["meta"])
    return {k: v for k, v in row.items() if v is not None}


def to_sharegpt(trajectory: Trajectory) -> dict[str, Any]:
    inverse = {"system": "system", "user": "human", "assistant": "gpt"}
    turns = []
    for m in trajectory.messages:
        turn = {"from": inverse[m["role"]], "value": m["content"]}
        if "loss" in m:
            turn["loss"] = m["loss"]
        turns.append(turn)
    return {"id": trajectory.id, "item_id": trajectory.task_id, "conversations": turns}
