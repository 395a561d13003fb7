"""How many RL training sequences one rollout's episodes make (`train.rl.episode_samples`), and why.

    python scripts/rollout_sequences.py                                  # base SmolLM2, 4 WebShop episodes, 8 turns
    python scripts/rollout_sequences.py --model runs/x/sft/final --episodes 16 --max-turns 15

An episode trains as one sequence when every turn's prompt starts with the previous prompt + reply
token for token. Per episode this prints its turns, its sequences and, for each turn that starts a
new one, where the prompt first differs from the previous prompt + reply. Sampling as the small
WebShop RL config does (temperature 1.0, top-p 0.9, 64 new tokens, KV cache, whole history in
`--max-prompt-tokens`, 3 072 by default).
"""

from __future__ import annotations

import argparse
import time

import torch

from prismrl.envs import make
from prismrl.envs.base import agent_env_config
from prismrl.envs.pool import EnvPool
from prismrl.models import load_model
from prismrl.rollout import SamplingConfig, rollout
from prismrl.rollout.kv_cache import common_prefix
from prismrl.train.rl import episode_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin:smollm2-135m")
    parser.add_argument("--env", default="webshop")
    parser.add_argument("--split", default="train")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--tasks", help="comma-separated task ids (each played --group times) instead of the split's first")
    parser.add_argument("--group", type=int, default=1)
    parser.add_argument("--max-turns", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-prompt-tokens", type=int, default=3072)
    parser.add_argument("--history-window", type=int, default=None, help="turns kept when the window jumps (default: all that fit)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer, name = load_model(args.model, "float32", "cpu")
    model.eval()
    config = SamplingConfig(
        temperature=1.0,
        top_p=0.9,
        max_new_tokens=64,
        max_turns=args.max_turns,
        history_window=args.history_window,
        max_prompt_tokens=args.max_prompt_tokens,
        kv_cache=True,
    )
    listing = make(args.env)
    try:
        chosen = args.tasks.split(",") if args.tasks else listing.tasks(args.split)[: args.episodes]
        tasks = [t for t in chosen for _ in range(args.group)]
    finally:
        listing.close()
    with EnvPool(args.env, agent_env_config(args.env, {}), 0) as pool:
        started = time.perf_counter()
        episodes = rollout(model, tokenizer, pool, args.env, tasks, config, seed=args.seed)
    print(f"{name}, {args.env}: {len(episodes)} episodes, rollout {time.perf_counter() - started:.0f} s")
    total = 0
    for episode in episodes:
        samples = episode_samples(episode, [0.0] * len(episode.turns))
        total += len(samples)
        breaks = []
        for t, (before, turn) in enumerate(zip(episode.turns, episode.turns[1:]), start=1):
            head = before.prompt_ids + before.response_ids
            at = common_prefix(head, turn.prompt_ids)
            if at < len(head):
                breaks.append(
                    f"turn {t}: differs at token {at} of {len(head)} "
                    f"({tokenizer.decode(head[at : at + 3])!r} vs {tokenizer.decode(turn.prompt_ids[at : at + 3])!r})"
                )
        print(
            f"task {episode.task_id}: {len(episode.turns)} turns, {len(samples)} sequences, "
            f"prompt tokens by turn {[len(t.prompt_ids) for t in episode.turns]}"
        )
        for line in breaks:
            print("  " + line)
    print(f"{total} sequences for {len(episodes)} episodes")


if __name__ == "__main__":
    main()
