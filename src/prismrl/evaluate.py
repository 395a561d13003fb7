"""Evaluation: play N episodes of a split with the model and report success (per task type),
WebShop-style score (100 × mean final reward) and episode length, with full transcripts.

Deterministic for a seed: the episodes are the split's tasks in a seeded order, and sampling is
seeded per turn.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prismrl.agent import SamplingConfig, rollout
from prismrl.fileio import atomic_write_json, atomic_write_jsonl


@dataclass
class EvalConfig:
    model: str = ""
    env: str = "alfworld"
    env_config: dict = field(default_factory=dict)
    split: str = "valid_seen"
    episodes: int = 128  # paper: 128
    temperature: float = 0.4  # paper: 0.4
    max_new_tokens: int = 96
    max_turns: int | None = None  # None: the env's own cap (ALFWorld 50, WebShop 15)
    history_window: int | None = 8
    max_prompt_tokens: int = 2048
    batch_episodes: int = 32  # episodes generated together
    n_workers: int = 0
    seed: int = 0
    out: str = ""
    dtype: str = "float32"
    device: str | None = None


DEFAULT_MAX_TURNS = {"alfworld": 50, "webshop": 15, "twx": 50}


def choose_tasks(all_tasks: list[str], episodes: int, seed: int) -> list[str]:
    """`episodes` tasks in a seeded order; cycles through the split when it is smaller."""
    order = list(all_tasks)
    random.Random(seed).shuffle(order)
    return [order[i % len(order)] for i in range(episodes)]


def summarize(episodes) -> dict:
    by_type = defaultdict(list)
    for e in episodes:
        by_type[e.task_type or "all"].append(e)
    n = len(episodes)
    return {
        "episodes": n,
        "success": sum(e.won for e in episodes) / n,
        "score": 100.0 * sum(e.reward for e in episodes) / n,
        "mean_steps": sum(len(e.turns) for e in episodes) / n,
        "invalid_action_rate": sum(e.n_invalid for e in episodes) / max(1, sum(len(e.turns) for e in episodes)),
        "errors": sum(e.error is not None for e in episodes),
        "prompt_tokens": sum(len(t.prompt_ids) for e in episodes for t in e.turns),
        "generated_tokens": sum(len(t.response_ids) for e in episodes for t in e.turns),
        "success_by_type": {t: sum(e.won for e in es) / len(es) for t, es in sorted(by_type.items())},
        "episodes_by_type": {t: len(es) for t, es in sorted(by_type.items())},
    }


def evaluate(cfg: EvalConfig, model=None, tokenizer=None, progress: bool = True) -> dict:
    from rich.progress import Progress

    from prismrl.envs.base import make
    from prismrl.envs.pool import EnvPool
    from prismrl.models import load_model

    if model is None:
        model, tokenizer, _ = load_model(cfg.model, cfg.dtype, cfg.device)
    model.eval()
    listing = make(cfg.env, **cfg.env_config)
    try:
        tasks = choose_tasks(listing.tasks(cfg.split), cfg.episodes, cfg.seed)
    finally:
        listing.close()
    sampling = SamplingConfig(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                              max_turns=cfg.max_turns or DEFAULT_MAX_TURNS.get(cfg.env, 50),
                              history_window=cfg.history_window, max_prompt_tokens=cfg.max_prompt_tokens)
    started = time.perf_counter()
    episodes = []
    with EnvPool(cfg.env, cfg.env_config, cfg.n_workers) as pool, Progress(disable=not progress) as bar:
        job = bar.add_task(f"eval {cfg.env}/{cfg.split}", total=len(tasks))
        for batch_start in range(0, len(tasks), cfg.batch_episodes):
            batch = tasks[batch_start : batch_start + cfg.batch_episodes]
            episodes += rollout(model, tokenizer, pool, cfg.env, batch, sampling, seed=cfg.seed * 1_000_003 + batch_start)
            bar.update(job, advance=len(batch))
    results = {**summarize(episodes), "seconds": time.perf_counter() - started, "config": asdict(cfg)}
    if cfg.out:
        out = Path(cfg.out)
        atomic_write_jsonl(out / "episodes.jsonl", [e.to_dict() for e in episodes])
        atomic_write_json(out / "results.json", results)
    return results
