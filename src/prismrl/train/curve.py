"""The RL run as a picture, redrawn after every step (a killed run keeps it): success, the env's
graded reward and the training reward per step, and where each step's time went (rollout vs
update). The training reward has its own axis: with `reward: success` it is 10 x won (verl-agent's
scale), which a 0-1 axis would cut off."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from prismrl.fileio import atomic_savefig  # noqa: E402


def rl_curve(metrics: list[dict]) -> dict[str, list[float]]:
    """Per step: mean training reward, env reward, success rate, rollout and update seconds (update =
    the rest of the step)."""
    return {
        "step": [m["step"] for m in metrics],
        "reward": [m["reward"] for m in metrics],
        "env_reward": [m.get("env_reward", float("nan")) for m in metrics],
        "success": [m["success"] for m in metrics],
        "rollout_seconds": [m["rollout_seconds"] for m in metrics],
        "update_seconds": [m["seconds"] - m["rollout_seconds"] for m in metrics],
    }


def plot_rl(metrics: list[dict], path: str | Path) -> None:
    curve = rl_curve(metrics)
    fig, (learning, cost) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    learning.plot(curve["step"], curve["success"], marker="s", label="success rate")
    learning.plot(curve["step"], curve["env_reward"], marker="^", label="env reward (0-1)")
    learning.set_xlabel("RL step")
    learning.set_ylim(-0.05, 1.05)
    learning.set_title("training episodes")
    trained = learning.twinx()
    trained.plot(curve["step"], curve["reward"], marker="o", linestyle="--", color="C2", label="training reward (right)")
    trained.set_ylabel("training reward")
    lines = learning.get_legend_handles_labels()[0] + trained.get_legend_handles_labels()[0]
    learning.legend(lines, [line.get_label() for line in lines], loc="upper left", fontsize="small")
    minutes = lambda seconds: [s / 60 for s in seconds]  # noqa: E731
    cost.bar(curve["step"], minutes(curve["rollout_seconds"]), label="rollout")
    cost.bar(curve["step"], minutes(curve["update_seconds"]), bottom=minutes(curve["rollout_seconds"]), label="update")
    cost.set_xlabel("RL step")
    cost.set_ylabel("minutes")
    cost.set_title("time per step")
    cost.legend()
    for ax in (learning, cost):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    atomic_savefig(fig, path)
    plt.close(fig)
