"""Environment speed, side by side: construction, reset time and steps/s under the expert policy,
then EnvPool speed-up (N worker processes vs one env playing the episodes one after another).

    python benchmarks/env_bench.py                                # webshop + twx (+ alfworld if given)
    python benchmarks/env_bench.py --alfworld-data $ALFWORLD_DATA --workers 1,2,4

ALFWorld is measured when its adapter (`prismrl.envs.alfworld.engine`) imports and a data dir is
given (`--alfworld-data` or $ALFWORLD_DATA); otherwise a line says it was skipped. The pool
section runs for ALFWorld, the slow-reset env, when it is measured; without it, for the others
(`--pool-envs` chooses). Each pool batch is checked to give exactly the sequential outcomes.
The defaults finish in well under two minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import itertools
import os
import shutil
import statistics
import sys
import time
from typing import Any

from prismrl.envs import make
from prismrl.envs.pool import EnvPool


def expert_episode(env, task_id: str, max_turns: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    observation, info = env.reset(task_id)
    reset_s = time.perf_counter() - t0
    trace: list[Any] = [(observation, info)]
    done, t1 = False, time.perf_counter()
    while not done and len(trace) <= max_turns:
        _, action = env.expert_step()
        observation, reward, done, info = env.step(action)
        trace.append((action, observation, reward, done, info))
    return {"reset_s": reset_s, "step_s": time.perf_counter() - t1, "steps": len(trace) - 1, "won": bool(info.get("won")), "trace": trace}


def pool_batch(pool: EnvPool, task_ids: list[str], replay: list[list[Any]]) -> tuple[float, list[list[Any]]]:
    """The episodes in the pool, replaying the actions of `replay` (what an LLM rollout looks
    like: actions come from the main process). The twx expert is not deterministic (its `coin`
    gold path wanders at random), so replaying is what makes the outcomes comparable."""
    t0 = time.perf_counter()
    traces: list[list[Any]] = [[start] for start in pool.reset(task_ids)]
    while True:
        actions = {slot: replay[slot][len(traces[slot])][0] for slot in pool.live if len(traces[slot]) < len(replay[slot])}
        if not actions:
            break
        for slot, o in pool.step(actions).items():
            if o.error:
                raise RuntimeError(f"slot {slot} ({task_ids[slot]}): {o.error}")
            traces[slot].append((o.action, o.observation, o.reward, o.done, o.info))
    return time.perf_counter() - t0, traces


def measure_env(name: str, config: dict, split: str, episodes: int, max_turns: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    env = make(name, **config)
    make_s = time.perf_counter() - t0
    try:
        tasks = env.tasks(split)
        if not tasks:
            raise RuntimeError(f"no tasks in split {split!r}")
        task_ids = list(itertools.islice(itertools.cycle(tasks), episodes))
        runs = [expert_episode(env, t, max_turns) for t in task_ids]
    finally:
        env.close()
    steps = sum(r["steps"] for r in runs)
    return {
        "name": name,
        "config": config,
        "split": split,
        "tasks": tasks,
        "make_s": make_s,
        "reset_s": statistics.mean(r["reset_s"] for r in runs),
        "steps_per_s": steps / sum(r["step_s"] for r in runs),
        "mean_steps": steps / len(runs),
        "won": sum(r["won"] for r in runs),
        "episodes": len(runs),
    }


def measure_pool(m: dict[str, Any], n_episodes: int, workers: list[int], max_turns: int, start_method: str) -> list[str]:
    task_ids = list(itertools.islice(itertools.cycle(m["tasks"]), n_episodes))
    env = make(m["name"], **m["config"])
    try:
        env.reset(task_ids[0])  # warm: construction and first-reset costs are not counted
        t0 = time.perf_counter()
        expected = [expert_episode(env, t, max_turns)["trace"] for t in task_ids]
        seq_s = time.perf_counter() - t0
    finally:
        env.close()
    rows = [f"{m['name']:<9} {'sequential':>10} {'-':>8} {seq_s:>8.3f} {'1.00x':>8}  (one env, {n_episodes} episodes)"]
    for n in workers:
        t0 = time.perf_counter()
        with EnvPool(m["name"], m["config"], n_workers=n, start_method=start_method, timeout=600) as pool:
            _, traces = pool_batch(pool, task_ids, expected)  # spawns, builds one env per slot
            cold_s = time.perf_counter() - t0
            warm_s, traces2 = pool_batch(pool, task_ids, expected)
        same = "identical" if traces == expected and traces2 == expected else "DIFFERENT from sequential!"
        rows.append(f"{m['name']:<9} {n:>10} {cold_s:>8.2f} {warm_s:>8.3f} {seq_s / warm_s:>7.2f}x  ({same})")
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", default="webshop,twx,alfworld", help="comma-separated envs to measure")
    p.add_argument("--episodes", type=int, default=20, help="expert episodes per env (webshop, twx)")
    p.add_argument("--alfworld-episodes", type=int, default=4, help="expert episodes for alfworld (2-3 s resets)")
    p.add_argument("--alfworld-data", default=os.environ.get("ALFWORLD_DATA"), help="ALFWorld data dir (default $ALFWORLD_DATA)")
    p.add_argument("--alfworld-split", default="train")
    p.add_argument("--webshop-split", default="test")
    p.add_argument("--twx-split", default="test")
    p.add_argument(
        "--workers",
        default=",".join(str(n) for n in sorted({1, min(4, os.cpu_count() or 1)})),
        help="comma-separated worker counts for the pool section",
    )
    p.add_argument("--pool-episodes", type=int, default=8, help="episodes per pool batch")
    p.add_argument("--pool-envs", default=None, help="envs for the pool section (default: alfworld if measured, else all)")
    p.add_argument("--start-method", default="spawn", choices=["spawn", "forkserver"])
    p.add_argument("--max-turns", type=int, default=60)
    args = p.parse_args(argv)

    wanted = [e.strip() for e in args.envs.split(",") if e.strip()]
    plans, skipped = [], []
    for name in wanted:
        if name == "webshop":
            plans.append(("webshop", {}, args.webshop_split, args.episodes))
        elif name == "twx":
            if importlib.util.find_spec("textworld_express") is None or shutil.which("java") is None:
                skipped.append("twx: skipped (textworld_express or Java missing)")
            else:
                plans.append(("twx", {}, args.twx_split, args.episodes))
        elif name == "alfworld":
            try:
                importlib.import_module("prismrl.envs.alfworld.engine")
            except Exception as error:
                skipped.append(f"alfworld: skipped (adapter not importable: {type(error).__name__}: {error})")
                continue
            if not args.alfworld_data:
                skipped.append("alfworld: skipped (no data dir: pass --alfworld-data or set ALFWORLD_DATA)")
                continue
            plans.append(("alfworld", {"data_dir": args.alfworld_data}, args.alfworld_split, args.alfworld_episodes))
        else:
            skipped.append(f"{name}: skipped (unknown to this benchmark)")

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; expert policy; max {args.max_turns} turns")
    print(f"{'env':<9} {'split':<10} {'make s':>7} {'reset ms':>9} {'steps/s':>9} {'steps/ep':>9} {'won':>7}")
    measured = []
    for name, config, split, episodes in plans:
        try:
            m = measure_env(name, config, split, episodes, args.max_turns)
        except Exception as error:
            print(f"{name:<9} failed: {type(error).__name__}: {error}")
            continue
        measured.append(m)
        print(
            f"{name:<9} {split:<10} {m['make_s']:>7.2f} {1000 * m['reset_s']:>9.1f} {m['steps_per_s']:>9.1f} "
            f"{m['mean_steps']:>9.1f} {m['won']:>3}/{m['episodes']:<3}"
        )
    for line in skipped:
        print(line)

    pool_names = (
        [e.strip() for e in args.pool_envs.split(",")]
        if args.pool_envs
        else ["alfworld"]
        if any(m["name"] == "alfworld" for m in measured)
        else [m["name"] for m in measured]
    )
    workers = [int(n) for n in args.workers.split(",") if n.strip()]
    print(
        f"\nEnvPool ({args.start_method}): {args.pool_episodes} episodes per batch, replaying the expert's actions; "
        "cold = spawn + one env per slot + batch, warm = a second batch on the same pool; speed-up = sequential / warm"
    )
    print(f"{'env':<9} {'workers':>10} {'cold s':>8} {'warm s':>8} {'speed-up':>8}")
    for m in measured:
        if m["name"] in pool_names:
            for row in measure_pool(m, args.pool_episodes, workers, args.max_turns, args.start_method):
                print(row, flush=True)
    if "alfworld" not in pool_names:
        print("(the slow-reset env, alfworld, was not measured: see above)")


if __name__ == "__main__":
    main()
