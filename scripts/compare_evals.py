"""Two evaluations of the same goals side by side, episode by episode (e.g. before and after RL).

    python scripts/compare_evals.py results/webshop-small/sft-all-s0/eval/test results/webshop-small/sft-all-s0-grpo/eval/test
    python scripts/compare_evals.py A B --budget 3072    # also: episodes whose whole history outgrows a prompt budget

Prints each run's success and score with their 95 % intervals (from results.json), then, over the
goals both played: how many transcripts are identical, which episodes only one run won, and the
mean per-episode score difference (B - A), and McNemar's exact test on the episodes only one run won
(the two-sided binomial p-value of the discordant pairs: paired, so the goals' difficulty cancels). `--budget` counts, per run, the episodes whose last
prompt with the whole history would exceed that many tokens (the built-in model's tokenizer).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def _episodes(folder: Path) -> dict[str, dict]:
    lines = (folder / "episodes.jsonl").read_text().splitlines()
    return {e["task_id"]: e for e in map(json.loads, lines)}


def _over_budget(episodes: dict[str, dict], budget: int, tokenizer) -> list[str]:
    from prismrl.rollout.history import prompt_tokens

    over = []
    for task_id, episode in episodes.items():
        messages = episode["messages"]
        last_reply = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        if len(prompt_tokens(tokenizer, messages[:last_reply])) > budget:
            over.append(f"{task_id} ({episode['steps']} turns, reward {episode['reward']:.2f})")
    return over


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: under no difference each discordant goal is a fair coin."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2**n
    return min(1.0, 2 * tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path, help="evaluation folder (results.json + episodes.jsonl)")
    parser.add_argument("b", type=Path)
    parser.add_argument("--budget", type=int, help="prompt budget in tokens to check the whole histories against")
    args = parser.parse_args()
    runs = {"A": args.a, "B": args.b}
    episodes = {name: _episodes(folder) for name, folder in runs.items()}
    for name, folder in runs.items():
        r = json.loads((folder / "results.json").read_text())
        won = sum(e["won"] for e in episodes[name].values())
        print(
            f"{name} {folder}: success {100 * r['success']:.1f} % ({won}/{r['episodes']}; 95 % CI "
            f"{100 * r['success_ci95'][0]:.1f}-{100 * r['success_ci95'][1]:.1f}), score {r['score']:.1f} "
            f"(95 % CI {r['score_ci95'][0]:.1f}-{r['score_ci95'][1]:.1f})"
        )
    a, b = episodes["A"], episodes["B"]
    shared = sorted(set(a) & set(b))
    identical = sum(a[t]["messages"] == b[t]["messages"] for t in shared)
    only_a = [t for t in shared if a[t]["won"] and not b[t]["won"]]
    only_b = [t for t in shared if b[t]["won"] and not a[t]["won"]]
    diff = sum(b[t]["reward"] - a[t]["reward"] for t in shared) / len(shared)
    print(
        f"{len(shared)} goals in both: {identical} identical transcripts; won by A only {len(only_a)} {only_a}, "
        f"by B only {len(only_b)} {only_b}; mean score B - A {100 * diff:+.2f}; "
        f"McNemar exact p = {mcnemar_exact(len(only_a), len(only_b)):.3g}"
    )
    if args.budget:
        from prismrl.models import BUILTIN_DEFAULT, load_tokenizer

        tokenizer = load_tokenizer(BUILTIN_DEFAULT)
        for name in runs:
            over = _over_budget(episodes[name], args.budget, tokenizer)
            print(f"{name}: {len(over)} episodes past {args.budget} prompt tokens with the whole history: {over}")


if __name__ == "__main__":
    main()
