"""Training success per task and per epoch of an RL run (its rl_episodes.jsonl): with a fixed task
list each epoch plays every task once, so the epochs compare the same tasks and a rise is the
policy's, not the draw's.

    python scripts/rl_by_epoch.py results/webshop-small/sft-all-s0-grpo-pool16/rl_episodes.jsonl \
        --plot results/webshop-small/sft-all-s0-grpo-pool16/rl_by_epoch.png
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path


def by_epoch_steps(episodes: list[dict]) -> dict[str, list[int]]:
    """task → the steps that played it, in order (its 1st, 2nd, ... visit)."""
    steps: dict[str, list[int]] = defaultdict(list)
    for e in episodes:
        if e["step"] not in steps[e["task_id"]]:
            steps[e["task_id"]].append(e["step"])
    return {task: sorted(visits) for task, visits in steps.items()}


def by_epoch(episodes: list[dict]) -> dict[str, dict[int, list[bool]]]:
    """task → epoch (the task's 1st, 2nd, ... visit, counted by step) → the group's wins."""
    steps = by_epoch_steps(episodes)
    table: dict[str, dict[int, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for e in episodes:
        table[e["task_id"]][steps[e["task_id"]].index(e["step"]) + 1].append(bool(e["won"]))
    return table


def paired_difference(table: dict[str, dict[int, list[bool]]], epoch: int, n_boot: int = 10_000, seed: int = 0):
    """Success in `epoch` minus epoch 1 on the tasks played in both, with a 95 % bootstrap interval
    over tasks (each task's group is the unit: its episodes share the task's difficulty)."""
    pairs = [(sum(v[1]) / len(v[1]), sum(v[epoch]) / len(v[epoch])) for v in table.values() if 1 in v and epoch in v]
    diffs = [b - a for a, b in pairs]
    rng = random.Random(seed)
    boots = sorted(sum(rng.choice(diffs) for _ in diffs) / len(diffs) for _ in range(n_boot))
    return (
        len(pairs),
        sum(a for a, _ in pairs) / len(pairs),
        sum(b for _, b in pairs) / len(pairs),
        boots[int(0.025 * n_boot)],
        boots[int(0.975 * n_boot) - 1],
    )


def plot_epochs(episodes: list[dict], table: dict[str, dict[int, list[bool]]], path: Path) -> None:
    """Success and mean environment reward per epoch, over the tasks that epoch played."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from prismrl.fileio import atomic_savefig

    visit = {}  # (task, step) -> epoch
    for task, visits in by_epoch_steps(episodes).items():
        for k, step in enumerate(visits, start=1):
            visit[task, step] = k
    epochs = sorted({k for visits in table.values() for k in visits})
    rewards = {k: [e["reward"] for e in episodes if visit[e["task_id"], e["step"]] == k] for k in epochs}
    success = {k: [w for visits in table.values() for w in visits.get(k, [])] for k in epochs}
    fig, ax = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
    ax.plot(epochs, [sum(success[k]) / len(success[k]) for k in epochs], marker="s", label="success rate")
    ax.plot(epochs, [sum(rewards[k]) / len(rewards[k]) for k in epochs], marker="^", label="env reward (0-1)")
    ax.set_xlabel("epoch over the task pool (each task's n-th visit)")
    ax.set_ylim(-0.05, 1.05)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"RL training episodes, {len(table)} tasks")
    ax.legend(loc="lower right", fontsize="small")
    atomic_savefig(fig, path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("episodes", type=Path, help="an RL run's rl_episodes.jsonl")
    parser.add_argument("--plot", type=Path, help="also draw success and env reward per epoch into this PNG")
    args = parser.parse_args()
    episodes = [json.loads(line) for line in args.episodes.read_text().splitlines() if line.strip()]
    table = by_epoch(episodes)
    epochs = sorted({k for visits in table.values() for k in visits})
    print("task   " + " ".join(f"epoch {k:>2}" for k in epochs))
    for task in sorted(table, key=lambda t: (len(t), t)):
        cells = [f"{sum(w)}/{len(w)}".rjust(8) if (w := table[task].get(k)) else " " * 8 for k in epochs]
        print(f"{task:6} " + " ".join(cells))
    for k in epochs:
        wins = [w for visits in table.values() for w in visits.get(k, [])]
        complete = sum(k in visits for visits in table.values())
        print(f"epoch {k}: success {sum(wins)}/{len(wins)} = {sum(wins) / len(wins):.3f} over {complete} of {len(table)} tasks")
    for k in epochs[1:]:
        n, before, after, low, high = paired_difference(table, k)
        print(
            f"the {n} tasks of epoch {k} in epoch 1: {before:.3f}, in epoch {k}: {after:.3f}; "
            f"difference {after - before:+.3f} (95 % bootstrap CI over tasks {low:+.3f} to {high:+.3f})"
        )
    if args.plot:
        plot_epochs(episodes, table, args.plot)


if __name__ == "__main__":
    main()
