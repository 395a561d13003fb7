"""Episodes won per RL step and task type, from a run's `rl/rl_episodes.jsonl` — which tasks RL
drew and whether their groups could give a GRPO gradient (docs/EXPERIMENTS.md, mirror testbed):

    python scripts/rl_wins_by_type.py results/mirror-small/grid/prism-gini-s1/rl/rl_episodes.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def wins_by_step_and_type(path: Path) -> dict[tuple[int, str], tuple[int, int]]:
    """(step, task type) → (episodes won, episodes)."""
    counts: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for line in path.read_text().splitlines():
        if line.strip():
            episode = json.loads(line)
            cell = counts[(episode["step"], episode.get("task_type") or "unknown")]
            cell[0] += bool(episode["won"])
            cell[1] += 1
    return {key: (won, total) for key, (won, total) in sorted(counts.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("episodes", type=Path, nargs="+", help="rl/rl_episodes.jsonl files")
    args = parser.parse_args()
    for path in args.episodes:
        cells = wins_by_step_and_type(path)
        print(f"{path}: " + ", ".join(f"step {step} {kind} {won}/{total}" for (step, kind), (won, total) in cells.items()))


if __name__ == "__main__":
    main()
