"""Stage I probe speed: the paper's batch-1 loop vs. the batched exact probe, same model, same
trajectories, one run.

    python benchmarks/probe_bench.py                       # SmolLM2-135M, 16 × ~512 tokens, 2 threads
    python benchmarks/probe_bench.py --budgets 2048,4096 --repeat 2 --breakdown

Rows (each in a fresh process, so peak memory is its own):
- `paper batch-1`: `probe.GradientProbe`, one trajectory per forward/backward, logits and softmax
  over every position, each unit's weight gradient formed and its norm taken (the paper's procedure).
- `batched B=1`: `probe.batched.BatchedProbe` on one trajectory at a time: logits only where a
  response token is predicted, no weight gradient, per-trajectory norms from hooks.
- `batched N tok`: the same, trajectories sorted by length and packed up to N padded tokens.
- `... +ckpt`: with gradient checkpointing (memory for time).

Every row's norms are checked against the paper row (max relative difference printed). Peak
memory: resident memory sampled every 2 ms while probing (CPU) or peak allocated (CUDA), and in
brackets its excess over the process with only the model loaded. `--breakdown` adds where the time goes: model forward (LM head inside it), the rest
(backward and the norms), and the time spent computing norms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "src" / "prismrl" / "data" / "demo_trajectories.jsonl"


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _PeakRss:
    """Peak resident memory while the block runs, sampled every 2 ms from a thread (torch ops release the GIL)."""

    def __enter__(self) -> "_PeakRss":
        self.peak, self._stop = _rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def make_pairs(model_name: str, n: int, max_length: int, data: str | None) -> list[tuple[list[int], list[int]]]:
    """The `n` longest trajectories (encoded as SFT sees them, truncated to max_length), repeated if too few."""
    from prismrl.data.format import CannotEncode, encode
    from prismrl.data.io import load_trajectories
    from prismrl.models import load_model

    _, tokenizer, _ = load_model(model_name, device="cpu")
    trajectories, _ = load_trajectories(data or DEMO)
    encoded = []
    for trajectory in trajectories:
        try:
            encoded.append(encode(trajectory, tokenizer, max_length))
        except CannotEncode:
            continue
    encoded.sort(key=lambda e: -e.n_tokens)
    chosen = [encoded[i % len(encoded)] for i in range(n)]
    return [(e.input_ids, e.labels) for e in chosen]


def worker(args) -> None:
    import torch

    from prismrl.models import load_model
    from prismrl.prism.batched import BatchedProbe, plan_batches
    from prismrl.prism.probe import GradientProbe
    from prismrl.prism.units import UnitGroup

    torch.set_num_threads(args.threads)
    pairs = [tuple(p) for p in json.loads(Path(args.pairs).read_text())]
    model, _, _ = load_model(args.model, args.dtype, args.device)
    cuda = next(model.parameters()).is_cuda
    base = torch.cuda.memory_allocated() / 2**20 if cuda else _rss_mb()
    kind, budget, ckpt = args.row
    timings = {"forward": 0.0, "norms": 0.0, "lm_head": 0.0}

    def timed(key):
        def pre(*_):
            if cuda:
                torch.cuda.synchronize()
            timings[key + "_t0"] = time.perf_counter()

        def post(*_):
            if cuda:
                torch.cuda.synchronize()
            timings[key] += time.perf_counter() - timings.pop(key + "_t0")

        return pre, post

    if args.breakdown:
        for module, key in ((model, "forward"), (model.get_output_embeddings(), "lm_head")):
            pre, post = timed(key)
            module.register_forward_pre_hook(pre)
            module.register_forward_hook(post)
        # Norm time: the unit norms (paper) or the per-trajectory reductions (batched).
        target, name = (UnitGroup, "norms") if kind == "paper" else (BatchedProbe, "_per_sample_norms")
        original = getattr(target, name)

        def wrapped(*a, **k):
            t0 = time.perf_counter()
            result = original(*a, **k)
            if cuda:
                torch.cuda.synchronize()
            timings["norms"] += time.perf_counter() - t0
            return result

        setattr(target, name, wrapped)

    if kind == "paper":
        probe = GradientProbe(model)
        batches = [[i] for i in range(len(pairs))]
        run = lambda batch: [probe(*pairs[i]) for i in batch]  # noqa: E731
    else:
        probe = BatchedProbe(model, gradient_checkpointing=ckpt)
        batches = plan_batches([len(ids) for ids, _ in pairs], budget or None, window=len(pairs))
        run = lambda batch: probe([pairs[i] for i in batch])  # noqa: E731
    results: dict[int, tuple[float, list[float]]] = {}
    with probe:
        shortest = min(range(len(pairs)), key=lambda i: len(pairs[i][0]))
        run([shortest])  # warm-up, untimed
        for key in timings:
            timings[key] = 0.0
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with _PeakRss() as rss:
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            for batch in batches:
                for i, result in zip(batch, run(batch)):
                    results[i] = result
            if cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            cpu_seconds = time.process_time() - cpu0
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else rss.peak
    out = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "n": len(pairs),
        "tokens": sum(len(ids) for ids, _ in pairs),
        "batches": len(batches),
        "peak_mb": peak,
        "base_mb": base,
        "methods": getattr(probe, "methods_used", None),
        "timings": timings if args.breakdown else None,
        "norms": [results[i][1] for i in range(len(pairs))],
    }
    Path(args.result).write_text(json.dumps(out))


def row_name(row) -> str:
    kind, budget, ckpt = row
    name = "paper batch-1" if kind == "paper" else ("batched B=1" if not budget else f"batched {budget} tok")
    return name + (" +ckpt" if ckpt else "")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="builtin:smollm2-135m")
    p.add_argument("--data", default=None, help=f"trajectory file (default: {DEMO.name})")
    p.add_argument("--n", type=int, default=16, help="trajectories")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--budgets", default="4096", help="comma-separated token budgets of the batched rows")
    p.add_argument("--checkpointing", action="store_true", help="add a row with gradient checkpointing at the largest budget")
    p.add_argument("--repeat", type=int, default=1, help="run every row this many times (rows interleaved)")
    p.add_argument("--breakdown", action="store_true", help="time forward / LM head / norms inside each row")
    p.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    p.add_argument("--pairs", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        kind, budget, ckpt = args.worker
        args.row = (kind, int(budget), ckpt == "1")
        worker(args)
        return

    import torch

    budgets = [int(b) for b in args.budgets.split(",") if b]
    rows = [("paper", 0, False), ("batched", 0, False)] + [("batched", b, False) for b in budgets]
    if args.checkpointing:
        rows.append(("batched", max(budgets), True))
    with tempfile.TemporaryDirectory() as tmp:
        pairs = make_pairs(args.model, args.n, args.max_length, args.data)
        (Path(tmp) / "pairs.json").write_text(json.dumps(pairs))
        lengths = [len(ids) for ids, _ in pairs]
        response = sum(sum(label != -100 for label in labels) for _, labels in pairs)
        print(
            f"model {args.model}, {len(pairs)} trajectories of {min(lengths)}-{max(lengths)} tokens "
            f"(mean {sum(lengths) / len(lengths):.0f}, {response / sum(lengths):.0%} response tokens), "
            f"{args.threads} threads, torch {torch.__version__}, {os.cpu_count()} CPUs, device {args.device}, {args.dtype}"
        )
        measured: dict[tuple, list[dict]] = {row: [] for row in rows}
        for _ in range(args.repeat):
            for row in rows:
                result = Path(tmp) / "result.json"
                command = [
                    sys.executable,
                    __file__,
                    "--worker",
                    row[0],
                    str(row[1]),
                    str(int(row[2])),
                    "--pairs",
                    str(Path(tmp) / "pairs.json"),
                    "--result",
                    str(result),
                    "--model",
                    args.model,
                    "--threads",
                    str(args.threads),
                    "--dtype",
                    args.dtype,
                    "--device",
                    args.device,
                ]
                if args.breakdown:
                    command.append("--breakdown")
                load = os.getloadavg()[0]
                subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
                measured[row].append({**json.loads(result.read_text()), "load": load})
                last = measured[row][-1]
                print(
                    f"  {row_name(row):<24} {last['seconds']:7.1f} s wall, {last['cpu_seconds']:7.1f} s CPU  (load avg before: {load:.2f})",
                    flush=True,
                )

    paper = min(measured[rows[0]], key=lambda r: r["seconds"])
    reference = torch.tensor(paper["norms"])
    header = f"| {'row':<24} | traj/s | tokens/s | batches | peak MB (+over model) | speed-up vs paper | max rel. diff |"
    print("\n" + header + "\n|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for row in rows:
        best = min(measured[row], key=lambda r: r["seconds"])
        diff = ((torch.tensor(best["norms"]) - reference).abs() / reference.abs()).max().item()
        print(
            f"| {row_name(row):<24} | {best['n'] / best['seconds']:6.3f} | {best['tokens'] / best['seconds']:8.1f} | "
            f"{best['batches']:7d} | {best['peak_mb']:6.0f} (+{best['peak_mb'] - best['base_mb']:5.0f})        | "
            f"{paper['seconds'] / best['seconds']:16.2f}x | {diff:13.1e} |"
        )
    if args.repeat > 1:
        print("\nall runs (s): " + "; ".join(f"{row_name(r)}: " + ", ".join(f"{m['seconds']:.1f}" for m in measured[r]) for r in rows))
    if args.breakdown:
        print("\nwhere the time goes (best run, seconds): forward incl. LM head | LM head forward | rest (backward + norms) | norms")
        for row in rows:
            best = min(measured[row], key=lambda r: r["seconds"])
            t = best["timings"]
            print(
                f"  {row_name(row):<24} {t['forward']:7.1f} | {t['lm_head']:7.1f} | {best['seconds'] - t['forward']:7.1f} | {t['norms']:7.1f}"
                + (f"   methods {best['methods']}" if best["methods"] else "")
            )


if __name__ == "__main__":
    main()
