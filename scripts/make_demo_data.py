"""Regenerate the demo trajectories shipped in the package (src/prismrl/data/demo_trajectories.jsonl).

Expert (gold-path) episodes from TextWorld-Express, in the agent's ReAct format. Needs the
`envs` extra and Java:  python scripts/make_demo_data.py
"""

from pathlib import Path

from prismrl.data.generate import expert_trajectory
from prismrl.data.io import save_trajectories
from prismrl.envs import make

# Mostly short games so the demo probes in a few minutes on 2 CPU cores; the cooking games are
# longer than the demo's context length and show truncation at work.
PER_GAME = {"coin": 10, "twc": 8, "cookingworld": 6}
TARGET = Path(__file__).resolve().parents[1] / "src" / "prismrl" / "data" / "demo_trajectories.jsonl"


def main() -> None:
    env = make("twx", games=list(PER_GAME))
    trajectories = []
    for game, count in PER_GAME.items():
        for task_id in [t for t in env.tasks("train") if t.startswith(f"{game}-")]:
            trajectory = expert_trajectory(env, "twx", task_id)
            if trajectory is not None:
                trajectories.append(trajectory)
            if sum(t.meta["task_type"] == game for t in trajectories) == count:
                break
    env.close()
    save_trajectories(trajectories, TARGET)
    print(f"wrote {len(trajectories)} trajectories to {TARGET}")


if __name__ == "__main__":
    main()
