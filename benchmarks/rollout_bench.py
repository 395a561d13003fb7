"""Multi-turn rollout speed: re-encoding the history every turn vs. reusing each episode's KV cache.

    python benchmarks/rollout_bench.py                       # SmolLM2-135M, WebShop, 8 episodes x 12 turns
    python benchmarks/rollout_bench.py --env twx --max-turns 16

Both paths play the same episodes (same task ids, greedy decoding, same prompts: no history
window and a `max_prompt_tokens` that is never reached, so both feed the model the very same
tokens), in one run. They take turns: the two rollouts run in two threads that hand a baton over
after every agent turn (generate + env step), so only one computes at any time and a load change
on a shared machine hits both alike; each path is timed only while it holds the baton. The run
checks that both took the same actions and prints env-steps/s, generated tokens/s, and where the
time went: prefill (forward passes over more than one new token per row), decode (one token per
row), env steps, and the rest (tokenizing prompts, copying caches, generate's own overhead).
`--temperature` > 0 samples instead; the paths then diverge after the first float-rounding
difference, so only the rates compare.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import threading
import time

import torch

import prismrl.rollout.agent as agent
from prismrl.envs import make
from prismrl.envs.pool import EnvPool
from prismrl.models import load_model
from prismrl.rollout import SamplingConfig, rollout
from prismrl.rollout.sampling import sample_replies

PATHS = ("re-encode", "KV cache")


class Baton:
    """Lets the paths compute one agent turn at a time, in turn, and times each one's share."""

    def __init__(self, names):
        self.names = list(names)
        self.holder = self.names[0]
        self.finished: set[str] = set()
        self.seconds = dict.fromkeys(self.names, 0.0)
        self._cond = threading.Condition()
        self._since = 0.0

    def _take(self, name):
        self._cond.wait_for(lambda: self.holder == name)
        self._since = time.perf_counter()

    def _give(self, name):
        self.seconds[name] += time.perf_counter() - self._since
        waiting = [n for n in self.names if n != name and n not in self.finished]
        self.holder = waiting[0] if waiting else name
        self._cond.notify_all()

    def begin(self, name):
        with self._cond:
            self._take(name)

    def turn_done(self, name):
        with self._cond:
            self._give(name)
            self._take(name)

    def end(self, name):
        with self._cond:
            self.finished.add(name)
            self._give(name)


class Clock:
    """Seconds the baton holder spends in the model's forward passes (prefill vs decode) and env steps."""

    def __init__(self, model, baton: Baton):
        self.baton = baton
        self.times = {name: {"prefill": 0.0, "decode": 0.0, "env": 0.0} for name in baton.names}
        self._start, self._kind = 0.0, "decode"
        model.register_forward_pre_hook(self._before, with_kwargs=True)
        model.register_forward_hook(self._after)

    def _before(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self._kind = "prefill" if ids is not None and ids.shape[1] > 1 else "decode"
        self._start = time.perf_counter()

    def _after(self, module, args, output):
        if self.baton.holder in self.times:
            self.times[self.baton.holder][self._kind] += time.perf_counter() - self._start

    def timed_pool(self, pool, name):
        step = pool.step

        def timed_step(*args, **kwargs):
            started = time.perf_counter()
            try:
                return step(*args, **kwargs)
            finally:
                self.times[name]["env"] += time.perf_counter() - started
                self.baton.turn_done(name)  # one agent turn done: let the other path take one

        pool.step = timed_step
        return pool


@contextlib.contextmanager
def recorded_caches(found: list):
    """Keep a handle on the EpisodeCaches that `rollout` creates, for its token counters."""
    original = agent.EpisodeCaches

    class Recorded(original):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            found.append(self)

    agent.EpisodeCaches = Recorded
    try:
        yield
    finally:
        agent.EpisodeCaches = original


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin:smollm2-135m")
    parser.add_argument("--env", default="webshop")
    parser.add_argument("--split", default="test")
    parser.add_argument("--first-task", type=int, default=0, help="use the split's tasks from this index on")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--max-turns", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-prompt-tokens", type=int, default=8000, help="keep it above what the episodes reach")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    model, tokenizer, name = load_model(args.model, args.dtype, device="cpu")
    model.eval()
    listing = make(args.env)
    try:
        tasks = listing.tasks(args.split)[args.first_task : args.first_task + args.episodes]
    finally:
        listing.close()
    print(
        f"# {name} ({args.dtype}, {args.threads} threads), {args.env} {args.split} tasks {tasks[0]}..{tasks[-1]}: "
        f"{len(tasks)} episodes, max_turns {args.max_turns}, max_new_tokens {args.max_new_tokens}, "
        f"temperature {args.temperature}"
    )
    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start, "
        f"torch {torch.__version__}, python {sys.version.split()[0]}"
    )
    sample_replies(model, tokenizer, [tokenizer("warm up")["input_ids"]], SamplingConfig(temperature=0.0, max_new_tokens=4))

    baton = Baton(PATHS)
    clock = Clock(model, baton)
    results, failures, found = {}, {}, []

    def play(path: str, pool) -> None:
        torch.set_num_threads(args.threads)  # the OpenMP thread count is per thread
        config = SamplingConfig(
            temperature=args.temperature,
            max_new_tokens=args.max_new_tokens,
            max_turns=args.max_turns,
            history_window=None,
            max_prompt_tokens=args.max_prompt_tokens,
            kv_cache=path == "KV cache",
        )
        baton.begin(path)
        try:
            results[path] = rollout(model, tokenizer, pool, args.env, tasks, config, seed=args.seed)
        except BaseException as error:  # noqa: BLE001 - reported below; the other path must not wait forever
            failures[path] = error
        finally:
            baton.end(path)

    wall = time.perf_counter()
    with EnvPool(args.env, {}, 0) as pool_a, EnvPool(args.env, {}, 0) as pool_b, recorded_caches(found):
        threads = [
            threading.Thread(target=play, args=(path, clock.timed_pool(pool, path)), name=path)
            for path, pool in zip(PATHS, (pool_a, pool_b))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    wall = time.perf_counter() - wall
    if failures:
        raise next(iter(failures.values()))

    rows = {}
    for path in PATHS:
        turns = [t for e in results[path] for t in e.turns]
        prompt_total = sum(len(t.prompt_ids) for t in turns)
        rows[path] = {
            "seconds": baton.seconds[path],
            "steps": len(turns),
            "generated": sum(len(t.response_ids) for t in turns),
            "fed": found[0].fed_tokens if path == "KV cache" else prompt_total,
            "max_prompt": max(len(t.prompt_ids) for t in turns),
            **clock.times[path],
        }
    base, cached = rows["re-encode"], rows["KV cache"]
    same = sum(
        a.action == b.action and a.response_ids == b.response_ids and a.prompt_ids == b.prompt_ids
        for x, y in zip(results["re-encode"], results["KV cache"])
        for a, b in zip(x.turns, y.turns)
    )
    print(
        f"# episode lengths: {[len(e.turns) for e in results['re-encode']]}; longest prompt {base['max_prompt']} "
        f"tokens; identical turns {same}/{base['steps']} (cached path: {cached['steps']} turns); "
        f"whole run {wall:.0f} s, load {os.getloadavg()[0]:.2f} at the end"
    )
    errors = [e.error for path in PATHS for e in results[path] if e.error]
    if errors:
        print(f"# episode errors: {errors}")
    print()
    print(
        "| path | seconds | env steps | env-steps/s | generated tokens | gen tokens/s | prompt tokens fed "
        "| prefill s | decode s | env s | other s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in PATHS:
        r = rows[path]
        other = r["seconds"] - r["prefill"] - r["decode"] - r["env"]
        print(
            f"| {path} | {r['seconds']:.1f} | {r['steps']} | {r['steps'] / r['seconds']:.3f} | {r['generated']} | "
            f"{r['generated'] / r['seconds']:.2f} | {r['fed']} | {r['prefill']:.1f} | {r['decode']:.1f} | "
            f"{r['env']:.1f} | {other:.1f} |"
        )
    steps_ratio = (cached["steps"] / cached["seconds"]) / (base["steps"] / base["seconds"])
    tokens_ratio = (cached["generated"] / cached["seconds"]) / (base["generated"] / base["seconds"])
    print(
        f"| **cached / re-encode** | | | **{steps_ratio:.2f}x** | | **{tokens_ratio:.2f}x** | "
        f"{cached['fed'] / base['fed']:.2f}x | {cached['prefill'] / base['prefill']:.2f}x | "
        f"{cached['decode'] / base['decode']:.2f}x | | |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
