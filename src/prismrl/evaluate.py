"""Evaluation: play N episodes of a split with the model and report success (per task type),
WebShop-style score (100 × mean final reward) and episode length, with full transcripts.

Deterministic for its seeds: the episodes are the split's tasks in an order seeded by `task_seed`, and sampling is
seeded per turn.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from prismrl.envs.base import episode_step_cap
from prismrl.errors import ConfigError
from prismrl.fileio import JsonlAppender, atomic_write_json, atomic_write_jsonl, repair_jsonl
from prismrl.rollout import SamplingConfig, rollout


@dataclass
class EvalConfig:
    model: str = ""
    env: str = "alfworld"
    env_config: dict = field(default_factory=dict)
    split: str = "valid_seen"
    episodes: int = 128  # paper: 128
    temperature: float = 0.4  # paper: 0.4
    max_new_tokens: int = 96
    max_turns: int | None = None  # None: the env's own cap (envs.base.EPISODE_STEP_CAPS)
    history_window: int | None = 8
    max_prompt_tokens: int = 2048
    kv_cache: bool = False  # keep each episode's KV cache between turns (prismrl.rollout.kv_cache)
    backend: str = "transformers"  # or vllm (GPU; prismrl.rollout.vllm)
    vllm_gpu_memory: float = 0.8  # share of the GPU vLLM may take
    batch_episodes: int = 32  # episodes generated together
    n_workers: int = 0
    seed: int = 0  # sampling
    # The goals' order, apart from the sampling seed: every training seed of a method is measured
    # on the same goals (issue 13), and methods are compared goal by goal.
    task_seed: int = 0
    out: str = ""
    dtype: str = "float32"  # compute precision; evaluation loads the weights in it (models.resolve_dtype)
    device: str | None = None


def choose_tasks(all_tasks: list[str], episodes: int, seed: int) -> list[str]:
    """`episodes` tasks in a seeded order; cycles through the split when it is smaller."""
    order = list(all_tasks)
    random.Random(seed).shuffle(order)
    return [order[i % len(order)] for i in range(episodes)]


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate: unlike the normal approximation it stays
    inside [0, 1] and is not empty at 0 or n successes."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_interval(values: list[float], resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of a mean over episodes (seeded: the same episodes
    always give the same interval)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return (float("nan"), float("nan"))
    means = data[np.random.default_rng(seed).integers(0, data.size, (resamples, data.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high))


def summarize(episodes: list[dict]) -> dict:
    """Metrics from episode records (`Episode.to_dict()`)."""
    by_type = defaultdict(list)
    for e in episodes:
        by_type[e["task_type"] or "all"].append(e)
    n = len(episodes)
    steps = sum(e["steps"] for e in episodes)
    return {
        "episodes": n,
        "success": sum(e["won"] for e in episodes) / n,
        "success_ci95": wilson_interval(sum(e["won"] for e in episodes), n),
        "score": 100.0 * sum(e["reward"] for e in episodes) / n,
        "score_ci95": tuple(100.0 * x for x in bootstrap_interval([e["reward"] for e in episodes])),
        "mean_steps": steps / n,
        "invalid_action_rate": sum(e["invalid_actions"] for e in episodes) / max(1, steps),
        "errors": sum(e["error"] is not None for e in episodes),
        "prompt_tokens": sum(e["prompt_tokens"] for e in episodes),
        "generated_tokens": sum(e["generated_tokens"] for e in episodes),
        "success_by_type": {t: sum(e["won"] for e in es) / len(es) for t, es in sorted(by_type.items())},
        "episodes_by_type": {t: len(es) for t, es in sorted(by_type.items())},
    }


def finished_batches(path: Path, batch_sizes: dict[int, int]) -> list[dict]:
    """Episode records of whole batches from an interrupted run of batched rollouts (evaluation,
    pass-rate), each record tagged with its batch's start; a partial batch is dropped."""
    records = repair_jsonl(path)
    counts = defaultdict(int)
    for record in records:
        counts[record["batch"]] += 1
    kept = [r for r in records if counts[r["batch"]] == batch_sizes.get(r["batch"])]
    if len(kept) != len(records):
        atomic_write_jsonl(path, kept)
    return kept


def evaluate(cfg: EvalConfig, model=None, tokenizer=None, progress: bool = True) -> dict:
    from prismrl.progress import Progress

    from prismrl.envs.base import agent_env_config, make
    from prismrl.envs.pool import EnvPool
    from prismrl.models import load_model

    engine = None
    if cfg.backend == "vllm":
        from prismrl.models import load_tokenizer, model_folder
        from prismrl.rollout.vllm import VLLMEngine

        engine = VLLMEngine(model_folder(cfg.model), dtype=cfg.dtype, gpu_memory_utilization=cfg.vllm_gpu_memory, seed=cfg.seed)
        tokenizer = tokenizer or load_tokenizer(cfg.model)
    elif cfg.backend != "transformers":
        raise ConfigError(f"EvalConfig.backend must be transformers or vllm, got {cfg.backend!r}")
    elif model is None:
        model, tokenizer, _ = load_model(cfg.model, cfg.dtype, cfg.device)
    if model is not None:
        model.eval()
    listing = make(cfg.env, **cfg.env_config)
    try:
        tasks = choose_tasks(listing.tasks(cfg.split), cfg.episodes, cfg.task_seed)
    finally:
        listing.close()
    sampling = SamplingConfig(
        temperature=cfg.temperature,
        max_new_tokens=cfg.max_new_tokens,
        max_turns=cfg.max_turns or episode_step_cap(cfg.env),
        history_window=cfg.history_window,
        max_prompt_tokens=cfg.max_prompt_tokens,
        kv_cache=cfg.kv_cache,
    )
    # Batches are fixed by (tasks, batch size) and seeded by their start, so a rerun after a crash
    # redoes only unfinished batches and gives the same episodes as an uninterrupted run.
    starts = range(0, len(tasks), cfg.batch_episodes)
    sizes = {start: len(tasks[start : start + cfg.batch_episodes]) for start in starts}
    out = Path(cfg.out) if cfg.out else Path(tempfile.mkdtemp(prefix="prism-eval-"))
    episodes_path = out / "episodes.jsonl"
    episodes = finished_batches(episodes_path, sizes)
    done = {r["batch"] for r in episodes}
    started = time.perf_counter()
    with (
        EnvPool(cfg.env, agent_env_config(cfg.env, cfg.env_config), cfg.n_workers) as pool,
        JsonlAppender(episodes_path) as sink,
        Progress(disable=not progress) as bar,
    ):
        job = bar.add_task(f"eval {cfg.env}/{cfg.split}", total=len(tasks), completed=len(episodes))
        for start in starts:
            if start in done:
                continue
            batch = tasks[start : start + cfg.batch_episodes]
            for episode in rollout(model, tokenizer, pool, cfg.env, batch, sampling, seed=cfg.seed * 1_000_003 + start, engine=engine):
                record = {"batch": start, **episode.to_dict()}
                sink.write(record)
                episodes.append(record)
            bar.update(job, advance=len(batch))
    episodes.sort(key=lambda r: r["batch"])
    results = {**summarize(episodes), "seconds": time.perf_counter() - started, "config": asdict(cfg)}
    atomic_write_json(out / "results.json", results)
    return results
