"""What the agent did in the WebShop episodes it did not win, read from an evaluation's transcripts,
with the evaluation's success and score and their 95 % intervals (`prismrl.evaluate.summarize`).

    python scripts/failure_modes.py runs/x/eval/test/episodes.jsonl [--examples 2]
    python scripts/failure_modes.py runs/x/rl/rl_episodes.jsonl --by-step   # also a row per RL step

Each episode falls in the first bucket that fits:
- won;
- bought, partial reward: it clicked `buy now` on a product page (a `click[buy now]` typed on a
  page without that button is an invalid no-op, not a purchase) and the product misses some
  attribute, option or the price (the mean reward says how close it came);
- invalid actions: most turns' replies held no well-formed action;
- stuck in a loop: the same action three times in a row and never bought;
- opened a product, never bought: reached a product page but ran out of turns;
- never opened a product: searched (maybe paged) but clicked no product;
- environment error.

It also counts the purchases made with fewer option clicks than the instruction names (`color: x,
and size: y` is two), the habit RL taught in the grid's WebShop `sft-then-rl` run
(docs/EXPERIMENTS.md); the file may be an RL run's rl/rl_episodes.jsonl as well. There
`--by-step` adds a row per RL step: how its episodes ended and how many of their turns repeated
the action before, the loop the grid's WebShop `magnitude` run learnt step by step.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from prismrl.evaluate import summarize

ACTION = re.compile(r"Action:\s*((?:search|click)\[.*?\])", re.IGNORECASE | re.DOTALL)
PRODUCT = re.compile(r"click\[b0[0-9a-z]{8}\]", re.IGNORECASE)
INSTRUCTION = re.compile(r"Instruction: \[SEP\] (.*?) \[SEP\]")
NOT_OPTIONS = {"click[description]", "click[features]", "click[reviews]", "click[< prev]", "click[back to search]"}


def actions(episode: dict) -> list[str]:
    found = []
    for message in episode["messages"]:
        if message["role"] == "assistant":
            match = ACTION.search(message["content"])
            found.append(match.group(1).strip().lower() if match else "<no action>")
    return found


def bought(episode: dict) -> bool:
    """Its last action is `buy now`, taken on a page that offers it: the one purchase, which ends
    the episode."""
    messages = episode["messages"]
    replies = [i for i, message in enumerate(messages) if message["role"] == "assistant"]
    if not replies or actions(episode)[-1] != "click[buy now]":
        return False
    page = messages[replies[-1] - 1]["content"]  # the observation the last reply answered
    return "buy now" in page.lower()


def bucket(episode: dict) -> str:
    if episode.get("error"):
        return "environment error"
    if episode["won"]:
        return "won"
    taken = actions(episode)
    if bought(episode):
        return "bought, partial reward"
    if episode["invalid_actions"] * 2 > max(1, episode["steps"]):
        return "invalid actions"
    if any(taken[i] == taken[i + 1] == taken[i + 2] for i in range(len(taken) - 2)):
        return "stuck in a loop"
    if any(PRODUCT.fullmatch(a) for a in taken):
        return "opened a product, never bought"
    return "never opened a product"


def bought_without_every_option(episode: dict) -> bool:
    """It clicked `buy now` after fewer option clicks (since it last opened a product) than the
    instruction names options."""
    if not bought(episode):
        return False
    taken = actions(episode)
    instruction = INSTRUCTION.search(episode["messages"][1]["content"])
    asked = len(re.findall(r"\w[\w ]*?: ", instruction.group(1))) if instruction else 0
    opened = max((i for i, a in enumerate(taken) if PRODUCT.fullmatch(a)), default=0)
    return sum(a.startswith("click[") and a not in NOT_OPTIONS for a in taken[opened + 1 : -1]) < asked


def repeated_turns(episode: dict) -> int:
    """Turns whose action is the one of the turn before."""
    taken = actions(episode)
    return sum(a == b for a, b in zip(taken, taken[1:]))


def by_step(episodes: list[dict]) -> list[dict]:
    """One row per RL step of an rl_episodes.jsonl: outcomes, turns and repeated actions."""
    rows = []
    for step in sorted({e["step"] for e in episodes}):
        group = [e for e in episodes if e["step"] == step]
        buckets = Counter(bucket(e) for e in group)
        rows.append(
            {
                "step": step,
                "episodes": len(group),
                "won": buckets["won"],
                "bought, partial reward": buckets["bought, partial reward"],
                "stuck in a loop": buckets["stuck in a loop"],
                "mean turns": sum(e["steps"] for e in group) / len(group),
                "repeated turns": sum(map(repeated_turns, group)),
                "turns": sum(e["steps"] for e in group),
                "mean reward": sum(e["reward"] for e in group) / len(group),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("episodes", type=Path)
    parser.add_argument("--examples", type=int, default=0, help="print this many action sequences per bucket")
    parser.add_argument("--first", type=int, default=None, help="only the first N episodes (the first N goals)")
    parser.add_argument("--by-step", action="store_true", help="an RL run's episodes: also a row per RL step")
    args = parser.parse_args()
    episodes = [json.loads(line) for line in args.episodes.read_text().splitlines() if line.strip()][: args.first]
    counts = Counter(bucket(e) for e in episodes)
    n = len(episodes)
    summary = summarize(episodes)
    (s_low, s_high), (r_low, r_high) = summary["success_ci95"], summary["score_ci95"]
    print(
        f"{args.episodes}: {n} episodes; success {100 * summary['success']:.1f} % (95 % CI {100 * s_low:.1f}-"
        f"{100 * s_high:.1f}), score {summary['score']:.1f} (95 % CI {r_low:.1f}-{r_high:.1f}), invalid actions "
        f"{100 * summary['invalid_action_rate']:.1f} %, mean turns {summary['mean_steps']:.2f}"
    )
    print("\n| outcome | episodes | share | mean reward | mean turns |\n|---|---:|---:|---:|---:|")
    for name, count in counts.most_common():
        group = [e for e in episodes if bucket(e) == name]
        print(
            f"| {name} | {count} | {100 * count / n:.1f} % | {sum(e['reward'] for e in group) / count:.3f} | "
            f"{sum(e['steps'] for e in group) / count:.1f} |"
        )
    purchases = sum(map(bought, episodes))
    print(
        f"\npurchases: {purchases}; with fewer option clicks than the instruction names: {sum(map(bought_without_every_option, episodes))}"
    )
    if args.by_step:
        print(
            "\n| RL step | episodes | won | bought, partial | stuck in a loop | mean turns | turns repeating the one before | mean reward |"
            "\n|---:|---:|---:|---:|---:|---:|---:|---:|"
        )
        for row in by_step(episodes):
            print(
                f"| {row['step']} | {row['episodes']} | {row['won']} | {row['bought, partial reward']} | {row['stuck in a loop']} | "
                f"{row['mean turns']:.1f} | {row['repeated turns']} of {row['turns']} | {row['mean reward']:.3f} |"
            )
    for name in counts:
        group = [e for e in episodes if bucket(e) == name][: args.examples]
        for e in group:
            print(f"\n{name} — {e['task_id']} (reward {e['reward']:.3f}):\n  " + "\n  ".join(actions(e)))


if __name__ == "__main__":
    main()
