"""SFT speed and memory next to the probe's forward + backward: same model, same WebShop expert
trajectories, one run, every row in a fresh process (so its peak memory is its own).

    python benchmarks/sft_bench.py                         # SmolLM2-135M, ~2k-token trajectories, 2 threads
    python benchmarks/sft_bench.py --rows probe,trl,labelled --steps 3

Rows:
- `probe`: the batched exact probe (`prism probe`), one trajectory per forward + backward: no weight
  gradients, logits only where a label is. The speed SFT is compared with.
- `trl`: `prism sft` with TRL 1.16's own fused LM head, which on CPU (no Triton) projects and
  scores every position.
- `labelled`: `prism sft` as shipped: the head, log-softmax, entropy and accuracy only on the
  positions that carry a label (`train.sft.score_labelled_positions_only`).
- `+ckpt`: gradient checkpointing; `lora`: LoRA r=16 on every projection (no weight gradients of the
  frozen base, so its FLOPs are the probe's).
- `mem`: batch 4 x ~2k tokens, the memory target (<= 6 GB resident); full fine-tuning.
- `+mask`: the padded micro-batch with its attention mask, as before `padding.attention_inputs`
  dropped it for right padding (transformers then copies keys and values per head group and SDPA
  computes every block); `+mask+gqa`: the same mask through torch's `enable_gqa`
  (`rollout.decoding.gqa_prefill`), without the copies.
- `+mmap`: `--low-memory` (`prismrl.memory.release_freed_memory`): glibc's mmap threshold fixed at
  1 MB, so every freed tensor above it goes back to the system at once instead of staying resident
  in the heap.

Full fine-tuning does a third more arithmetic than the probe per token (the weight gradients of
every projection), so at equal FLOP rates its tokens/s is about 2/3 of the probe's; LoRA's is not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from probe_bench import _PeakRss  # the same 2 ms resident-memory sampler (MB); benchmarks/ is on sys.path


class Row(NamedTuple):
    kind: str  # "probe" or "sft"
    batch_size: int
    grad_accum: int
    labelled_only: bool = True
    checkpointing: bool = False
    lora: bool = False
    attention: str = ""  # "": as shipped; "mask": the mask kept; "mask+gqa": kept, through enable_gqa
    low_memory: bool = False  # `--low-memory`; False: glibc's default (a threshold that grows as large blocks are freed)


ROWS = {
    "probe": Row("probe", 1, 1),
    "trl": Row("sft", 1, 4, labelled_only=False),
    "labelled": Row("sft", 1, 4),
    "labelled+ckpt": Row("sft", 1, 4, checkpointing=True),
    "lora": Row("sft", 1, 4, lora=True),
    "mem-trl+ckpt": Row("sft", 4, 1, labelled_only=False, checkpointing=True),
    "mem-labelled": Row("sft", 4, 1),
    "mem-labelled+ckpt": Row("sft", 4, 1, checkpointing=True),
    "mem-labelled+ckpt+mask": Row("sft", 4, 1, checkpointing=True, attention="mask"),
    "mem-labelled+ckpt+mask+gqa": Row("sft", 4, 1, checkpointing=True, attention="mask+gqa"),
    "mem-labelled+ckpt+mmap": Row("sft", 4, 1, checkpointing=True, low_memory=True),
}
DEFAULT_ROWS = "probe,trl,labelled,labelled+ckpt,lora,mem-labelled,mem-labelled+ckpt"


def make_data(path: Path, n: int) -> None:
    from prismrl.data.generate import generate

    generate("webshop", "train", n, str(path), {}, 15, progress=False)


def _pairs(model_name: str, data: Path, n: int, max_length: int):
    from prismrl.data.format import encode
    from prismrl.data.io import load_trajectories
    from prismrl.models import load_model

    _, tokenizer, _ = load_model(model_name, device="cpu")
    trajectories, _ = load_trajectories(data)
    encoded = sorted((encode(t, tokenizer, max_length) for t in trajectories), key=lambda e: -e.n_tokens)
    return [(e.input_ids, e.labels) for e in encoded[:n]]


def probe_worker(args, pairs) -> dict:
    from prismrl.models import load_model
    from prismrl.prism.batched import BatchedProbe

    model = load_model(args.model, "float32", "cpu")[0]
    probe = BatchedProbe(model)
    with probe:
        probe([pairs[-1]])  # warm-up, untimed
        with _PeakRss() as rss:
            started = time.perf_counter()
            for pair in pairs[: args.probe_n]:
                probe([pair])
            seconds = time.perf_counter() - started
    return {"seconds": seconds, "tokens": sum(len(ids) for ids, _ in pairs[: args.probe_n]), "peak_gb": rss.peak / 1024}


def sft_worker(args, pairs, row) -> dict:
    import datasets
    from transformers import TrainerCallback

    from prismrl.models import load_model
    from prismrl.train import sft

    from prismrl.rollout.decoding import gqa_prefill

    if not row.labelled_only:
        sft.score_labelled_positions_only = lambda model: None  # TRL's own head: the baseline
    if row.attention:
        sft.attention_inputs = lambda mask: {"attention_mask": mask}  # the mask kept, as before
    model, tokenizer, _ = load_model(args.model, "float32", "cpu")
    samples_per_step = row.batch_size * row.grad_accum
    steps = 1 + args.steps  # the first step is a warm-up, untimed
    chosen = [pairs[i % len(pairs)] for i in range(steps * samples_per_step)]
    dataset = datasets.Dataset.from_dict({"input_ids": [p[0] for p in chosen], "labels": [p[1] for p in chosen]})
    with tempfile.TemporaryDirectory() as out:
        cfg = sft.SFTTrainConfig(
            model=args.model,
            data="bench",
            out=out,
            max_steps=steps,
            lr=1e-5,
            batch_size=row.batch_size,
            grad_accum=row.grad_accum,
            lora=row.lora,
            gradient_checkpointing=row.checkpointing,
            save_steps=10_000,
            logging_steps=1,
            device="cpu",
        )
        times: list[float] = []

        class StepTimer(TrainerCallback):
            def on_step_begin(self, *a, **k):
                self.t0 = time.perf_counter()

            def on_step_end(self, *a, **k):
                times.append(time.perf_counter() - self.t0)

        trainer = sft.build_trainer(cfg, model, tokenizer, dataset, callbacks=[StepTimer()])
        with _PeakRss() as rss, gqa_prefill(model) if "gqa" in row.attention else contextlib.nullcontext():
            trainer.train()
        counts = [r["num_tokens"] for r in trainer.state.log_history if "num_tokens" in r]
    tokens = counts[-1] - counts[0]  # the timed steps' tokens (num_tokens is cumulative)
    return {"seconds": sum(times[1:]), "tokens": tokens, "peak_gb": rss.peak / 1024, "step_seconds": times}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="builtin:smollm2-135m")
    p.add_argument("--rows", default=DEFAULT_ROWS, help=f"comma-separated, of {', '.join(ROWS)}")
    p.add_argument("--max-length", type=int, default=2048, help="trajectories are encoded to at most this many tokens")
    p.add_argument("--steps", type=int, default=2, help="timed optimizer steps per SFT row (after one warm-up step)")
    p.add_argument("--probe-n", type=int, default=8, help="trajectories the probe row times")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        row = ROWS[args.worker]
        if row.low_memory:
            from prismrl.memory import release_freed_memory

            release_freed_memory()
        import torch

        torch.set_num_threads(args.threads)
        pairs = _pairs(args.model, Path(args.data), 16, args.max_length)
        result = probe_worker(args, pairs) if row.kind == "probe" else sft_worker(args, pairs, row)
        Path(args.result).write_text(json.dumps(result))
        return

    names = [r for r in args.rows.split(",") if r]
    unknown = [r for r in names if r not in ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "expert.jsonl"
        make_data(data, 24)
        for name in names:
            result_path = Path(tmp) / f"{name}.json"
            command = [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--data",
                str(data),
                "--result",
                str(result_path),
                "--model",
                args.model,
                "--max-length",
                str(args.max_length),
                "--steps",
                str(args.steps),
                "--probe-n",
                str(args.probe_n),
                "--threads",
                str(args.threads),
            ]
            started = time.perf_counter()
            finished = subprocess.run(command, capture_output=True, text=True)
            if finished.returncode != 0:
                print(f"{name}: failed ({finished.returncode}); {finished.stderr[-2000:]}", file=sys.stderr)
                continue
            results[name] = json.loads(result_path.read_text())
            print(f"{name}: {time.perf_counter() - started:.0f} s wall", file=sys.stderr, flush=True)
    probe = results.get("probe")
    print(
        f"\nSmolLM2-135M ({args.model}), float32, {args.threads} threads, trajectories <= {args.max_length} tokens, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| row | batch x accum | tokens | seconds | tokens/s | x probe | peak GB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        row = ROWS[name]
        rate = r["tokens"] / r["seconds"]
        ratio = f"{rate / (probe['tokens'] / probe['seconds']):.2f}x" if probe else "-"
        print(
            f"| {name} | {row.batch_size} x {row.grad_accum} | {r['tokens']} | {r['seconds']:.1f} | {rate:.1f} | {ratio} | {r['peak_gb']:.2f} |"
        )


if __name__ == "__main__":
    main()
