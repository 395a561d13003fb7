"""How many trajectories of each task type a routing sent to RL, e.g. the mirror houses' conflicting
ones before and after `prism-gini-reprobe`'s second probe (docs/EXPERIMENTS.md):

    python scripts/routing_by_type.py results/mirror-small/grid/shared/data/expert.jsonl \\
        results/mirror-small/grid/prism-gini-reprobe-s0/route/routing.json results/mirror-small/grid/prism-gini-reprobe-s0/reroute/routing.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from prismrl.data.io import load_trajectories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("expert", type=Path, help="the routed trajectories (their meta.task_type)")
    parser.add_argument("routings", type=Path, nargs="+", help="routing.json files")
    args = parser.parse_args()
    task_type = {t.id: t.meta.get("task_type") for t in load_trajectories(args.expert)[0]}
    for path in args.routings:
        routing = json.loads(path.read_text())
        counts = Counter(task_type.get(i, "unknown") for i in routing["ids_rl"])
        print(f"{path}: RL half of {len(routing['ids_rl'])}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
