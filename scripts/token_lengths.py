"""Token lengths of expert trajectories as the probe and SFT see them (chat template, the model's
tokenizer), to choose a `max_length` and a prompt budget that cut nothing (docs/LEARNING.md):

    python scripts/token_lengths.py runs/small/alfworld-data/expert.jsonl --limits 2048,3072,4096
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from prismrl.data.format import encode_messages
from prismrl.data.io import load_trajectories
from prismrl.models import BUILTIN_DEFAULT, load_tokenizer


def describe(lengths: list[int]) -> str:
    q = np.percentile(lengths, [50, 90, 100])
    return f"n {len(lengths)}, mean {np.mean(lengths):.0f}, median {q[0]:.0f}, p90 {q[1]:.0f}, max {q[2]:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trajectories", type=Path)
    parser.add_argument("--model", default=BUILTIN_DEFAULT, help="whose tokenizer and chat template")
    parser.add_argument("--limits", default="2048,3072,4096", help="comma-separated max_length values to count against")
    args = parser.parse_args()
    tokenizer = load_tokenizer(args.model)
    lengths, turns, by_type = [], [], defaultdict(list)
    for trajectory in load_trajectories(args.trajectories)[0]:
        n = len(encode_messages(trajectory.messages, tokenizer)[0])
        lengths.append(n)
        turns.append(sum(m["role"] == "assistant" for m in trajectory.messages))
        by_type[trajectory.meta.get("task_type", "unknown")].append(n)
    print(f"tokens: {describe(lengths)}")
    print(f"assistant turns: {describe(turns)}")
    for limit in (int(x) for x in args.limits.split(",")):
        print(f"over {limit}: {sum(n > limit for n in lengths)} of {len(lengths)}")
    for task_type, values in sorted(by_type.items()):
        print(f"  {task_type}: {describe(values)}")


if __name__ == "__main__":
    main()
