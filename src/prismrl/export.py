"""Hand a PRISM split to the paper's own stack: LLaMA-Factory for SFT, verl-agent for RL.

    prism export --format llamafactory RUN_DIR   →  RUN_DIR/export/llamafactory/
        prism_sft.json        the SFT half in LLaMA-Factory's sharegpt format
        dataset_info.json     its entry (merge it into LLaMA-Factory's data/dataset_info.json)
    prism export --format verl-agent RUN_DIR     →  RUN_DIR/export/verl-agent/
        rl_tasks.json         the RL half's task ids (and, for ALFWorld, their game folders)
        alfworld/json_2.1.1/train/...   links to just those games (ALFWorld only)
        verl_agent_overrides.txt         command-line overrides with the paper's GRPO settings

RUN_DIR is a `prism route` output folder or a `prism run` folder (whose split is in route/).
"""

from __future__ import annotations

import os
from pathlib import Path

from prismrl.data.io import load_trajectories
from prismrl.envs.base import EPISODE_STEP_CAPS
from prismrl.errors import InputError, MissingFile
from prismrl.fileio import atomic_write_json, atomic_write_text

DATASET_NAME = "prism_sft"
# The paper's RL protocol (verl-agent defaults it used): group 8, 16 tasks per step, lr 1e-6,
# KL loss 0.01, invalid-action penalty 0.1.
VERL_AGENT_GRPO = [
    "algorithm.adv_estimator=grpo",
    "env.rollout.n=8",
    "data.train_batch_size=16",
    "actor_rollout_ref.actor.optim.lr=1e-6",
    "actor_rollout_ref.actor.use_kl_loss=True",
    "actor_rollout_ref.actor.kl_loss_coef=0.01",
    "actor_rollout_ref.actor.use_invalid_action_penalty=True",
    "actor_rollout_ref.actor.invalid_action_penalty_coef=0.1",
    "actor_rollout_ref.rollout.val_kwargs.temperature=0.4",
    "actor_rollout_ref.rollout.val_kwargs.do_sample=True",
]
VERL_AGENT_ENV = {
    name: [f"env.env_name={env_name}", f"env.max_steps={EPISODE_STEP_CAPS[name]}"]
    for name, env_name in (("alfworld", "alfworld/AlfredTWEnv"), ("webshop", "Webshop"))
}


def _route_dir(run_dir: Path) -> Path:
    for candidate in (run_dir, run_dir / "route"):
        if (candidate / "split.json").exists():
            return candidate
    raise MissingFile(f"{run_dir} holds no split.json (neither a `prism route` nor a `prism run` folder)")


def to_llamafactory_record(trajectory) -> dict:
    """sharegpt with a separate system column; turns must alternate human/gpt and end on gpt."""
    messages = list(trajectory.messages)
    system = messages.pop(0)["content"] if messages and messages[0]["role"] == "system" else None
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()  # a final observation carries no loss and LLaMA-Factory rejects it
    conversations, expected = [], "user"
    for message in messages:
        if message["role"] != expected:
            raise InputError(f"trajectory {trajectory.id!r}: LLaMA-Factory needs alternating user/assistant turns after the system prompt")
        conversations.append({"from": "human" if expected == "user" else "gpt", "value": message["content"]})
        expected = "assistant" if expected == "user" else "user"
    record = {"id": trajectory.id, "conversations": conversations}
    if system is not None:
        record["system"] = system
    return record


def export_llamafactory(run_dir: str | Path, out: str | Path | None = None) -> Path:
    route_dir = _route_dir(Path(run_dir))
    out = Path(out or Path(run_dir) / "export" / "llamafactory")
    trajectories, _ = load_trajectories(route_dir / "sft.jsonl")
    atomic_write_json(out / f"{DATASET_NAME}.json", [to_llamafactory_record(t) for t in trajectories])
    atomic_write_json(
        out / "dataset_info.json",
        {
            DATASET_NAME: {
                "file_name": f"{DATASET_NAME}.json",
                "formatting": "sharegpt",
                "columns": {"messages": "conversations", "system": "system"},
                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
            }
        },
    )
    if any(m.get("loss") is False for t in trajectories for m in t.messages):
        atomic_write_text(
            out / "WARNING.txt",
            "Some assistant turns carry loss: false; LLaMA-Factory's sharegpt format cannot mask single turns, so it will train on them.\n",
        )
    return out


def export_verl_agent(run_dir: str | Path, out: str | Path | None = None, alfworld_data: str | None = None) -> Path:
    route_dir = _route_dir(Path(run_dir))
    out = Path(out or Path(run_dir) / "export" / "verl-agent")
    trajectories, _ = load_trajectories(route_dir / "rl.jsonl")
    envs = {t.env for t in trajectories} - {None}
    env = envs.pop() if len(envs) == 1 else None
    task_ids = sorted({t.task_id for t in trajectories})
    manifest = {"env": env, "task_ids": task_ids, "n_tasks": len(task_ids)}
    overrides = list(VERL_AGENT_GRPO)
    overrides += VERL_AGENT_ENV.get(env, [])
    if env == "alfworld":
        data = Path(alfworld_data or os.environ.get("ALFWORLD_DATA", ""))
        games = out / "alfworld" / "json_2.1.1" / "train"
        manifest["game_dirs"] = []
        for task_id in task_ids:
            source = (data / "json_2.1.1" / task_id).resolve()
            if not (source / "game.tw-pddl").exists():
                raise MissingFile(f"RL task {task_id!r}: no game.tw-pddl under {source}; pass --alfworld-data")
            link = games / Path(task_id).relative_to(Path(task_id).parts[0])
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(source, target_is_directory=True)
            manifest["game_dirs"].append(str(link))
        manifest["note"] = (
            f"point ALFWorld's config at these games only: dataset.data_path: {games} (and export ALFWORLD_DATA={out / 'alfworld'})"
        )
    elif env == "webshop":
        manifest["note"] = (
            "task ids are goal indexes of the seed-233 shuffle (the session ids of the original text env); "
            "restrict verl-agent's WebShop goal sampler to them"
        )
    atomic_write_json(out / "rl_tasks.json", manifest)
    atomic_write_text(out / "verl_agent_overrides.txt", "\n".join(overrides) + "\n")
    return out
