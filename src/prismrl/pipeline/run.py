"""`prism run`: one method's whole pipeline — data → probe → route → SFT → (re-probe) → RL → eval — into one
folder, resumable at every phase (`phases.py`), each phase's cost in `ledger.jsonl`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import yaml

from prismrl import ledger
from prismrl.errors import ConfigError
from prismrl.fileio import atomic_write_json, atomic_write_text
from prismrl.pipeline import phases
from prismrl.pipeline.phase import Run
from prismrl.pipeline.run_config import RunConfig

SUMMARY_KEYS = ("success", "success_ci95", "score", "score_ci95", "mean_steps", "success_by_type", "episodes")


def save_config(cfg: RunConfig, out: Path) -> None:
    """The resolved config beside the results; a folder holding another run's config is refused."""
    config_file = out / "config.yaml"
    if config_file.exists() and not same_config(config_file, cfg):
        raise ConfigError(f"{out} holds a run with another config ({config_file}); use a new --out to change settings")
    atomic_write_text(config_file, yaml.safe_dump(asdict(cfg), sort_keys=False))


def same_config(config_file: Path, cfg: RunConfig) -> bool:
    """Whether a saved config resolves to `cfg` (compared as YAML: the file holds lists where cfg has tuples)."""
    return yaml.safe_dump(saved_config(config_file), sort_keys=False) == yaml.safe_dump(asdict(cfg), sort_keys=False)


def saved_config(config_file: Path) -> dict:
    """A saved config as this version resolves it: an option added since (e.g. keep_checkpoints)
    takes its default, so a run started before it still resumes."""
    saved = yaml.safe_load(config_file.read_text()) or {}
    return {**asdict(RunConfig()), **saved}


def run(cfg: RunConfig, out: str | Path) -> dict:
    """Run (or resume) one method's pipeline into `out`; returns the summary also written there."""
    job = Run(cfg, Path(out))
    job.out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, job.out)
    plan = job.plan
    if cfg.games:
        if cfg.env != "alfworld":
            raise ConfigError("`games` generates ALFWorld-procedural games; it only applies to env: alfworld")
        phases.alfworld_games(job)
    sft_data = rl_data = None
    if plan.sft or plan.rl:
        expert = sft_data = rl_data = Path(cfg.data) if cfg.data else phases.expert_data(job)
    if plan.router:
        route = phases.probe_route if plan.probes else phases.plain_route
        route_dir = route(job, sft_data)
        sft_data, rl_data = route_dir / "sft.jsonl", route_dir / "rl.jsonl"
    model = cfg.model
    if plan.sft:
        model = str(phases.sft(job, sft_data))
    if plan.reprobe:
        rl_data = phases.reprobe_route(job, expert, model) / "rl.jsonl"
    if plan.rl:
        model = str(phases.rl(job, model, phases.task_ids(rl_data)))
    results = {split: json.loads(phases.evaluate(job, model, split=split).read_text()) for split in cfg.eval.get("splits", ["test"])}
    summary = {
        "method": cfg.method,
        "final_model": model,
        "eval": {split: {k: r[k] for k in SUMMARY_KEYS if k in r} for split, r in results.items()},
        "cost": ledger.total(job.out),
    }
    atomic_write_json(job.out / "summary.json", summary)
    return summary
