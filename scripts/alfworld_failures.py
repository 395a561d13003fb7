"""What the agent did in the ALFWorld episodes it did not win, read from an evaluation's transcripts,
with the evaluation's success and its 95 % interval per task type (`prismrl.evaluate.summarize`):

    python scripts/alfworld_failures.py runs/x/eval/valid_seen/episodes.jsonl [--examples 2]

Each episode falls in the first bucket that fits:
- won;
- environment error;
- invalid actions: most turns' replies held no well-formed action;
- stuck in a loop: the same command three times in a row;
- commands the game rejects: most commands were not among the admissible ones the previous
  observation listed (the game answers them "Nothing happens.");
- picked something up, unfinished: it held an object at some point and ran out of turns;
- never picked anything up.

It also gives the share of all commands that were not admissible, the measure of whether the
agent acts in the game's own vocabulary.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from prismrl.evaluate import summarize

ACTION = re.compile(r"Action:\s*(.+)")
ADMISSIBLE = re.compile(r"Admissible commands: (.*)", re.DOTALL)
PICKED_UP = re.compile(r"\bYou pick up\b")


def turns(episode: dict) -> list[tuple[str, list[str], str]]:
    """(command, the admissible commands it was chosen from, the observation it got) per turn."""
    messages = episode["messages"]
    found = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = ADMISSIBLE.search(messages[i - 1]["content"]) if i > 0 else None
        admissible = [c.strip() for c in before.group(1).split(",")] if before else []
        match = ACTION.search(message["content"])
        after = messages[i + 1]["content"] if i + 1 < len(messages) else ""
        found.append((match.group(1).strip().lower() if match else "<no action>", admissible, after))
    return found


def not_admissible(episode: dict) -> int:
    return sum(bool(admissible) and command not in admissible for command, admissible, _ in turns(episode))


def bucket(episode: dict) -> str:
    if episode.get("error"):
        return "environment error"
    if episode["won"]:
        return "won"
    taken = turns(episode)
    commands = [command for command, _, _ in taken]
    if episode["invalid_actions"] * 2 > max(1, episode["steps"]):
        return "invalid actions"
    if any(commands[i] == commands[i + 1] == commands[i + 2] for i in range(len(commands) - 2)):
        return "stuck in a loop"
    if not_admissible(episode) * 2 > max(1, len(taken)):
        return "commands the game rejects"
    if any(PICKED_UP.search(observation) for _, _, observation in taken):
        return "picked something up, unfinished"
    return "never picked anything up"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("episodes", type=Path)
    parser.add_argument("--examples", type=int, default=0, help="print this many command sequences per bucket")
    args = parser.parse_args()
    episodes = [json.loads(line) for line in args.episodes.read_text().splitlines() if line.strip()]
    n = len(episodes)
    summary = summarize(episodes)
    low, high = summary["success_ci95"]
    commands = sum(len(turns(e)) for e in episodes)
    print(
        f"{args.episodes}: {n} episodes; success {100 * summary['success']:.1f} % (95 % CI {100 * low:.1f}-{100 * high:.1f}), "
        f"invalid actions {100 * summary['invalid_action_rate']:.1f} %, mean turns {summary['mean_steps']:.2f}, "
        f"commands not admissible {sum(map(not_admissible, episodes))} of {commands}"
    )
    print("\n| task type | episodes | won |\n|---|---:|---:|")
    for task_type, count in sorted(Counter(e["task_type"] for e in episodes).items()):
        print(f"| {task_type} | {count} | {sum(e['won'] for e in episodes if e['task_type'] == task_type)} |")
    counts = Counter(bucket(e) for e in episodes)
    print("\n| outcome | episodes | share | mean turns |\n|---|---:|---:|---:|")
    for name, count in counts.most_common():
        group = [e for e in episodes if bucket(e) == name]
        print(f"| {name} | {count} | {100 * count / n:.1f} % | {sum(e['steps'] for e in group) / count:.1f} |")
    for name in counts:
        for e in [e for e in episodes if bucket(e) == name][: args.examples]:
            print(f"\n{name} — {e['task_id']}:\n  " + "\n  ".join(command for command, _, _ in turns(e)))


if __name__ == "__main__":
    main()
