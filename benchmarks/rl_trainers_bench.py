"""The same RL steps on the reference trainer (`train.rl`) and on TRL's GRPOTrainer (`train.rl_trl`),
side by side in one run: seconds for the rollout and for the rest of the step (log-probs of the
policy and the reference + the update), peak resident memory, tokens. Each trainer runs in a
process of its own, one after the other, so their peaks do not mix and their threads do not compete.

    python benchmarks/rl_trainers_bench.py --model runs/small/webshop-sft-all-s0/sft/final --tasks 500,501
    python benchmarks/rl_trainers_bench.py --model builtin:smollm2-135m --env bandit --tasks bandit-0,bandit-1
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from prismrl.train import TRAINERS


def run_one(args) -> dict:
    """One trainer's steps in this process; returns its per-step metrics and the process's peak."""
    import torch

    from prismrl.train import run_rl
    from prismrl.train.rl import RLConfig

    torch.set_num_threads(args.threads)
    tasks = args.tasks.split(",")
    cfg = RLConfig(
        model=args.model,
        env=args.env,
        tasks=tasks,
        out=str(Path(args.out) / args.only),
        steps=args.steps,
        tasks_per_step=len(tasks),
        group_size=args.group,
        micro_batch_size=args.micro_batch,
        lr=1e-6,
        kl_coef=args.kl,
        max_new_tokens=args.max_new_tokens,
        max_turns=args.max_turns,
        history_window=None,
        max_prompt_tokens=args.max_prompt_tokens,
        kv_cache=True,
        top_p=0.9,
        save_steps=10_000,
        trainer=args.only,
        device="cpu",
    )
    run_rl(cfg, progress=False)
    metrics = [json.loads(line) for line in (Path(cfg.out) / "rl_metrics.jsonl").read_text().splitlines()]
    return {"metrics": metrics, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin:smollm2-135m")
    parser.add_argument("--env", default="webshop")
    parser.add_argument("--tasks", default="500,501", help="comma-separated task ids; all of them every step")
    parser.add_argument("--group", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--micro-batch", type=int, default=1)
    parser.add_argument("--kl", type=float, default=0.02)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--max-prompt-tokens", type=int, default=3072)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=TRAINERS, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run_one(args)))
        return
    results = {}
    with tempfile.TemporaryDirectory() as out:
        for trainer in TRAINERS:
            child = subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--only", trainer, "--out", out], capture_output=True, text=True
            )
            if child.returncode:
                sys.exit(f"{trainer} failed:\n{child.stderr[-3000:]}")
            results[trainer] = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{args.model} on {args.env}: {args.steps} step(s) of {len(args.tasks.split(','))} tasks x {args.group}, KL {args.kl}")
    print(f"{'trainer':8} {'rollout s':>10} {'update s':>9} {'step s':>8} {'generated':>10} {'trained tok':>12} {'peak GB':>8}")
    for trainer, result in results.items():
        m = result["metrics"]
        rollout = sum(x["rollout_seconds"] for x in m)
        total = sum(x["seconds"] for x in m)
        print(
            f"{trainer:8} {rollout:10.1f} {total - rollout:9.1f} {total:8.1f} {sum(x['tokens_generated'] for x in m):10d} "
            f"{sum(x['update_tokens'] for x in m):12d} {result['peak_gb']:8.2f}"
        )
    ref, trl = (results[t]["metrics"] for t in TRAINERS)
    ratio = sum(x["seconds"] for x in trl) / sum(x["seconds"] for x in ref)
    print(f"trl / prismrl step time: {ratio:.2f}x")


if __name__ == "__main__":
    main()
