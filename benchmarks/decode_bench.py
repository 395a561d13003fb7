"""One RL rollout turn at batch 16 with long KV caches: transformers' sampling vs. `prismrl.rollout.decoding`,
and a plain forward (one token per row, no sampling) as the floor, side by side in one run.

    python benchmarks/decode_bench.py                  # SmolLM2-135M, 16 rows, ~2.5k cached tokens, 20 fed, 48 new
    python benchmarks/decode_bench.py --cached 1500 --new 64

The caches hold real text (WebShop expert trajectories rendered with the chat template, one
prefill shared by all rows, cut to different lengths), so the next-token distributions are as
peaked as a trained model's on its own history; random keys/values would give near-flat ones,
where the nucleus is most of the vocabulary. Each turn feeds `--fed` new tokens per row (the
observation), then samples at temperature 1.0, top-p 0.9 (the small WebShop RL config) for up to
`--new` tokens. The paths alternate `--repeats` times; best of each is printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from transformers.cache_utils import DynamicCache

import prismrl.rollout.kv_cache as kv_cache
from prismrl.data.generate import generate as generate_expert
from prismrl.data.io import load_trajectories
from prismrl.models import load_model
from prismrl.rollout import SamplingConfig
from prismrl.rollout.history import prompt_tokens
from prismrl.rollout.kv_cache import EpisodeCaches, TurnLayer, _Entry
from prismrl.rollout.sampling import sample_replies as prismrl_sample


def transformers_sample(model, tokenizer, prompts, config, generator_seed=None, cache=None):
    """`sampling.sample_replies` as it was: transformers' temperature and top-p warpers, SDPA attention."""
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention[row, width - len(ids) :] = 1
    torch.manual_seed(generator_seed)
    output = model.generate(
        input_ids=input_ids,
        attention_mask=attention,
        max_new_tokens=config.max_new_tokens,
        do_sample=True,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=0,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        cache=cache,
    )
    return output[:, width:].tolist()


def real_text(tokenizer, length: int) -> list[int]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "expert.jsonl"
        generate_expert("webshop", "train", 16, path)
        ids: list[int] = []
        for trajectory in load_trajectories(path)[0]:
            ids += prompt_tokens(tokenizer, trajectory.messages)
            if len(ids) >= length:
                return ids[:length]
    raise SystemExit("not enough expert text for --cached")


@torch.no_grad()
def shared_prefill(model, ids: list[int]):
    cache = DynamicCache()
    model(input_ids=torch.tensor([ids]), cache=cache, use_cache=True)
    return [(layer.keys[0].clone(), layer.values[0].clone()) for layer in cache.layers]


def fill(caches: EpisodeCaches, ids: list[int], kv, rows: int, fed: int) -> list[list[int]]:
    """Row i holds the first n_i tokens (n_i spread over the last 600) and is fed the next `fed`."""
    prompts = []
    for row in range(rows):
        n = len(ids) - fed - (row * 37) % 600
        caches.entries[row] = _Entry(ids[:n], [(k[:, :n].clone(), v[:, :n].clone()) for k, v in kv])
        prompts.append(ids[: n + fed])
    return prompts


@torch.no_grad()
def forward_step_seconds(model, kv, rows: int, length: int, steps: int) -> float:
    """One token per row through the model over a `length`-token cache, no sampling: the floor."""
    layers = []
    for k, v in kv:
        shape = (rows, k.shape[0], length + steps, k.shape[2])
        keys, values = k.new_zeros(shape), v.new_zeros(shape)
        keys[:, :, :length], values[:, :, :length] = k[:, :length], v[:, :length]
        layers.append(TurnLayer(keys, values, length))
    cache = DynamicCache()
    cache.layers = layers
    token = torch.full((rows, 1), 100)
    mask = torch.ones((rows, length), dtype=torch.long)
    started = time.perf_counter()
    for step in range(steps):
        mask = torch.cat([mask, torch.ones((rows, 1), dtype=torch.long)], dim=1)
        position = torch.full((rows, 1), length + step)
        model(input_ids=token, attention_mask=mask, position_ids=position, cache=cache, use_cache=True)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin:smollm2-135m")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--cached", type=int, default=2500)
    parser.add_argument("--fed", type=int, default=20)
    parser.add_argument("--new", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer, name = load_model(args.model, device="cpu")
    model.eval()
    config = SamplingConfig(
        temperature=1.0,
        top_p=0.9,
        max_new_tokens=args.new,
        kv_cache=True,
        history_window=None,
        max_prompt_tokens=args.cached + args.fed + 1,
    )
    ids = real_text(tokenizer, args.cached + args.fed)
    kv = shared_prefill(model, ids)
    paths = {"transformers (before)": transformers_sample, "prismrl.rollout.decoding": prismrl_sample}
    best: dict[str, tuple[float, int]] = {}
    for repeat in range(args.repeats):
        for label, sample in paths.items():
            kv_cache.sample_replies = sample
            caches = EpisodeCaches(model, tokenizer, config)
            prompts = fill(caches, ids, kv, args.rows, args.fed)
            started = time.perf_counter()
            replies = caches.sample(list(range(args.rows)), prompts, seed=repeat)
            seconds = time.perf_counter() - started
            steps = max(len(r) for r in replies)
            if label not in best or seconds / steps < best[label][0] / best[label][1]:
                best[label] = (seconds, steps)
    kv_cache.sample_replies = prismrl_sample
    floor = forward_step_seconds(model, kv, args.rows, args.cached, 8)
    print(f"{name}, {args.rows} rows, ~{args.cached} cached tokens, {args.fed} fed, up to {args.new} new, {args.threads} threads")
    print("| path | turn seconds | decode steps | seconds / step | generated tokens/s |")
    print("|---|---:|---:|---:|---:|")
    for label, (seconds, steps) in best.items():
        print(f"| {label} | {seconds:.2f} | {steps} | {seconds / steps:.3f} | {args.rows * steps / seconds:.1f} |")
    print(f"| plain forward, 1 token/row (floor) | | | {floor:.3f} | {args.rows / floor:.1f} |")
    before, after = (s / n for s, n in best.values())
    print(f"speed-up {before / after:.2f}x; prismrl.rollout.decoding at {floor / after:.2f}x the plain forward's rate")


if __name__ == "__main__":
    main()
