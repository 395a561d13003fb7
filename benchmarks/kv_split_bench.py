"""KV-cache rollouts near the prompt budget: one batch per turn vs. a window jump's row cut off.

    python benchmarks/kv_split_bench.py                     # SmolLM2-135M, WebShop, 16 episodes x 12 turns
    python benchmarks/kv_split_bench.py --episodes 32 --max-prompt-tokens 3072 --max-turns 15

The base model at the pass-rate phase's sampling (temperature 1.0, top-p 0.9) answers WebShop with
chat, so every episode runs all its turns and its prompt outgrows `--max-prompt-tokens`, jumping its
history window at a turn of its own. Unsplit, each jump makes the whole batch feed a whole prompt;
split (`prismrl.rollout.kv_cache.split_by_feed`), the jumping rows get a batch of their own. Both
settings play the same tasks with the same seed in one process, one after the other (unsplit first),
and the table gives seconds, fed tokens and the ratio. The two sample different random streams after
the first cut, so only the rates compare.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import prismrl.rollout.kv_cache as kv_cache
from prismrl.envs import make
from prismrl.envs.pool import EnvPool
from prismrl.models import load_model
from prismrl.rollout import SamplingConfig, rollout
from rollout_bench import recorded_caches  # this folder: `python benchmarks/kv_split_bench.py`

SETTINGS = {"one batch": 10**12, "split": kv_cache.SPLIT_MIN_SAVED_TOKENS}


def play(model, tokenizer, env: str, tasks: list[str], config: SamplingConfig, seed: int) -> dict:
    found = []
    with EnvPool(env, {}, 0) as pool, recorded_caches(found):
        started = time.perf_counter()
        episodes = rollout(model, tokenizer, pool, env, tasks, config, seed=seed)
        seconds = time.perf_counter() - started
    turns = [t for e in episodes for t in e.turns]
    return {
        "seconds": seconds,
        "turns": len(turns),
        "generated": sum(len(t.response_ids) for t in turns),
        "fed": found[0].fed_tokens,
        "reused": found[0].reused_tokens,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin:smollm2-135m")
    parser.add_argument("--env", default="webshop")
    parser.add_argument("--split", default="train")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--max-turns", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-prompt-tokens", type=int, default=1536)
    parser.add_argument("--history-window", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    model, tokenizer, name = load_model(args.model, "float32", device="cpu")
    model.eval()
    listing = make(args.env)
    try:
        tasks = listing.tasks(args.split)[: args.episodes]
    finally:
        listing.close()
    config = SamplingConfig(
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        max_turns=args.max_turns,
        history_window=args.history_window,
        max_prompt_tokens=args.max_prompt_tokens,
        kv_cache=True,
    )
    print(
        f"# {name} (float32, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs), {args.env} {args.split}: "
        f"{len(tasks)} episodes x {args.max_turns} turns, max_prompt_tokens {args.max_prompt_tokens}, "
        f"history_window {args.history_window}, temperature {args.temperature}, top_p {args.top_p}, "
        f"split when it saves > {kv_cache.SPLIT_MIN_SAVED_TOKENS} fed tokens"
    )
    rows = {}
    for setting, min_saved in SETTINGS.items():
        kv_cache.SPLIT_MIN_SAVED_TOKENS = min_saved
        rows[setting] = play(model, tokenizer, args.env, tasks, config, args.seed)
    print("| setting | seconds | turns | generated tokens | prompt tokens fed | reused from cache |")
    print("|---|---:|---:|---:|---:|---:|")
    for setting, row in rows.items():
        print(f"| {setting} | {row['seconds']:.0f} | {row['turns']} | {row['generated']} | {row['fed']} | {row['reused']} |")
    one, split = rows["one batch"], rows["split"]
    print(f"\nsplit / one batch: {split['seconds'] / one['seconds']:.2f}x the seconds, {split['fed'] / one['fed']:.2f}x the fed tokens")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
