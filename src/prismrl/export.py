"""Hand a PRISM routing to the paper's own stack: LLaMA-Factory for SFT, verl-agent for RL.

    prism export --format llamafactory RUN_DIR   →  RUN_DIR/export/llamafactory/
        prism_sft.json        the SFT half in LLaMA-Factory's sharegpt format
        dataset_info.json     its entry (merge it into LLaMA-Factory's data/dataset_info.json)
    prism export --format verl-agent RUN_DIR     →  RUN_DIR/export/verl-agent/
        rl_tasks.json         the RL half's task ids (and, for ALFWorld, their game folders)
        alfworld/json_2.1.1/train/...   links to just those games (ALFWorld only)
        verl_agent_overrides.txt         command-line overrides with the paper's GRPO settings
        webshop_goal_idxs.json          the RL half's goal indexes (WebShop only)
        restrict_webshop_goals.py       the one-line edit that makes verl-agent train on them

RUN_DIR is a `prism route` output folder or a `prism run` folder (whose routing is in route/).

verl-agent trains ALFWorld on the games its `dataset.data_path` holds, so the export links only the
RL half's games into a folder of their own. Its WebShop env has no such hook: it samples training
goals from range(500, len(goals)) (WebshopMultiProcessEnv.__init__). `restrict_webshop_goals.py`
edits that line once in a verl-agent checkout so that, when PRISM_WEBSHOP_GOALS names a JSON list
of goal indexes, training samples only those; without the variable verl-agent is unchanged.
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

WEBSHOP_GOALS_FILE = "webshop_goal_idxs.json"
# Written into the export as restrict_webshop_goals.py (a file of its own, to run in a verl-agent checkout).
RESTRICT_WEBSHOP_GOALS = '''"""Make verl-agent's WebShop train only on the goals listed in $PRISM_WEBSHOP_GOALS (a JSON list).

    python restrict_webshop_goals.py VERL_AGENT_CHECKOUT
    PRISM_WEBSHOP_GOALS=$PWD/webshop_goal_idxs.json python -m verl.trainer.main_ppo ...

Written by `prism export --format verl-agent`. Edits one line of
agent_system/environments/env_package/webshop/envs.py (the training goal range); the test goals
(range(500)) and every other behaviour stay as they are. Running it twice changes nothing.
"""

import sys
from pathlib import Path

TARGET = "agent_system/environments/env_package/webshop/envs.py"
ORIGINAL = "self.goal_idxs = range(500, len(goals))"
RESTRICTED = (
    "self.goal_idxs = __import__('json').load(open(__import__('os').environ['PRISM_WEBSHOP_GOALS'])) "
    "if 'PRISM_WEBSHOP_GOALS' in __import__('os').environ else range(500, len(goals))"
)

path = Path(sys.argv[1]) / TARGET
text = path.read_text()
if RESTRICTED in text:
    print(f"{path}: already restricted")
elif text.count(ORIGINAL) != 1:
    sys.exit(f"{path}: expected one line `{ORIGINAL}` (verl-agent changed?); edit its training goal range by hand")
else:
    path.write_text(text.replace(ORIGINAL, RESTRICTED))
    print(f"{path}: training goals now read from $PRISM_WEBSHOP_GOALS when it is set")
'''


def webshop_goal_indexes(task_ids: list[str]) -> list[int]:
    """WebShop task ids are goal indexes of the seed-233 shuffle, the `session` verl-agent resets to."""
    try:
        return sorted(int(t) for t in task_ids)
    except ValueError:
        bad = next(t for t in task_ids if not t.strip().lstrip("-").isdigit())
        raise InputError(f"WebShop RL task {bad!r} is not a goal index; verl-agent can only be given goal indexes") from None


def _route_dir(run_dir: Path, rl_half: bool = False) -> Path:
    """The routing folder of a `prism route` or `prism run` folder; for the RL half, a
    prism-gini-reprobe run's second routing (`reroute/`, by the SFT checkpoint), which its RL used."""
    for candidate in (run_dir, *([run_dir / "reroute"] if rl_half else []), run_dir / "route"):
        if (candidate / "routing.json").exists():
            return candidate
    raise MissingFile(f"{run_dir} holds no routing.json (neither a `prism route` nor a `prism run` folder)")


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
    route_dir = _route_dir(Path(run_dir), rl_half=True)
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
        atomic_write_json(out / WEBSHOP_GOALS_FILE, webshop_goal_indexes(task_ids))
        atomic_write_text(out / "restrict_webshop_goals.py", RESTRICT_WEBSHOP_GOALS)
        manifest["note"] = (
            "task ids are goal indexes of the seed-233 shuffle (the session ids of the original text env); run "
            f"`python {out / 'restrict_webshop_goals.py'} VERL_AGENT_CHECKOUT` once, then train with "
            f"PRISM_WEBSHOP_GOALS={(out / WEBSHOP_GOALS_FILE).resolve()}"
        )
    atomic_write_json(out / "rl_tasks.json", manifest)
    atomic_write_text(out / "verl_agent_overrides.txt", "\n".join(overrides) + "\n")
    return out
