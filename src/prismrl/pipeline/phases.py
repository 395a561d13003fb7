"""The phases of `prism run`, in pipeline order, each under the one contract of `phase.py`:

phase          writes (in the run folder)              done when         ledger
expert_data    data/expert.jsonl                       generate_report   –
pass_rates     route/pass_rates.json (+ its episodes)  itself            pass-rate
probe_route    route/{sft,rl}.jsonl, routing.json, report  routing.json      probe
plain_route    route/{sft,rl}.jsonl, routing.json          routing.json      –   (random, pass-rate, conflict)
sft            sft/final                               its config.json   sft
reprobe_route  reroute/{sft,rl}.jsonl, routing.json    routing.json      reprobe   (prism-gini-reprobe)
rl             rl/final                                its config.json   rl
evaluate       eval/<split>/results.json + episodes    results.json      eval

sft and rl delete their checkpoint-* once final/ is written (RunConfig.keep_checkpoints keeps them).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from prismrl.config import build
from prismrl.data.format import DEFAULT_MAX_LENGTH
from prismrl.ledger import CostRecord
from prismrl.pipeline.phase import Run, phase


PASS_RATE_BATCH_TASKS = 8  # tasks rolled out together (k episodes each) by the pass-rate phase


def task_ids(path: Path) -> list[str]:
    from prismrl.data.io import load_trajectories

    return sorted({t.task_id for t in load_trajectories(path)[0]})


def alfworld_games(run: Run) -> None:
    """Generate the configured ALFWorld-procedural games into the run (finished games are found
    and kept) and point the env at them."""
    from prismrl.envs.alfworld.generate import generate_games

    cfg, games_dir = run.cfg, run.out / "games"
    for split, n in cfg.games.items():
        generate_games(split, n, games_dir, seed=cfg.seed, workers=max(1, cfg.n_workers))
    cfg.env_config = {**cfg.env_config, "data_dir": str(games_dir)}


@phase(None, output="data/expert.jsonl", done="data/generate_report.json")
def expert_data(run: Run, cost: None) -> None:
    """Expert trajectories from the env's expert (when the config gives no `data` file)."""
    from prismrl.data.generate import generate
    from prismrl.fileio import atomic_write_json

    options = run.cfg.generate
    report = generate(
        run.cfg.env, options["split"], options["n"], run.out / "data" / "expert.jsonl", run.cfg.env_config, options.get("max_turns")
    )
    atomic_write_json(
        run.out / "data" / "generate_report.json", {"kept": report.kept, "expert_lost": report.failed, "engine_errors": report.errors}
    )


@phase("pass-rate", output="route/pass_rates.json")
def pass_rates(run: Run, cost: CostRecord, expert: Path) -> None:
    """HPT-style signal: the base model's success rate over k rollouts of each trajectory's task.
    Each batch's episodes are appended to route/pass_rate_episodes.jsonl, so a rerun after a crash
    redoes only unfinished batches (seeded by their start: the same episodes) and the transcripts
    can be read."""
    from prismrl.envs.base import agent_env_config
    from prismrl.envs.pool import EnvPool
    from prismrl.evaluate import finished_batches
    from prismrl.fileio import JsonlAppender, atomic_write_json
    from prismrl.models import load_model
    from prismrl.progress import Progress
    from prismrl.rollout import rollout
    from prismrl.train.rl import RLConfig, rollout_sampling

    cfg = run.cfg
    k = cfg.pass_rate["k"]
    tasks = task_ids(expert)
    # The rollouts RL will run (its sampling and context settings, defaults included), so the rate
    # measures what RL would see.
    sampling = rollout_sampling(build(RLConfig, {**cfg.agent, **cfg.rl}, "rl"))
    if "temperature" in cfg.pass_rate:
        sampling = replace(sampling, temperature=cfg.pass_rate["temperature"])
    starts = range(0, len(tasks), PASS_RATE_BATCH_TASKS)
    sizes = {start: k * len(tasks[start : start + PASS_RATE_BATCH_TASKS]) for start in starts}
    episodes_path = run.out / "route" / "pass_rate_episodes.jsonl"
    episodes = finished_batches(episodes_path, sizes)
    done = {r["batch"] for r in episodes}
    model, tokenizer, _ = load_model(cfg.model, cfg.dtype, cfg.device)
    with (
        EnvPool(cfg.env, agent_env_config(cfg.env, cfg.env_config), cfg.n_workers) as pool,
        JsonlAppender(episodes_path) as sink,
        Progress() as bar,
    ):
        job = bar.add_task(f"pass-rate {cfg.env} (k={k})", total=sum(sizes.values()), completed=len(episodes))
        for start in starts:
            if start in done:
                continue
            batch = [t for t in tasks[start : start + PASS_RATE_BATCH_TASKS] for _ in range(k)]
            for episode in rollout(model, tokenizer, pool, cfg.env, batch, sampling, seed=cfg.seed + start):
                record = {"batch": start, **episode.to_dict()}
                sink.write(record)
                episodes.append(record)
                cost.add(forward=record["prompt_tokens"], generated=record["generated_tokens"])
            bar.update(job, advance=len(batch))
    wins: dict[str, list[bool]] = {t: [] for t in tasks}
    for record in episodes:
        wins[record["task_id"]].append(record["won"])
    atomic_write_json(run.out / "route" / "pass_rates.json", {t: sum(w) / len(w) for t, w in wins.items()})


def _probe_max_length(run: Run) -> int:
    return run.cfg.probe.get("max_length", DEFAULT_MAX_LENGTH)


def _probe_route_config(run: Run, expert: Path, out: str, model: str):
    """Stages I–III's RouteConfig for the plan's router and metric, probing with `model`."""
    from prismrl.config import RouteConfig

    cfg = run.cfg
    return RouteConfig(
        data=str(expert),
        out=str(run.out / out),
        model=model,
        dtype=cfg.dtype,
        device=cfg.device,
        router=run.plan.router,
        metric=run.plan.metric,
        seed=cfg.seed,
        rl_share=cfg.route.get("rl_share", 0.5),
        max_length=_probe_max_length(run),
        normalize=cfg.probe.get("normalize", "none"),
    )


@phase("probe", output="route", done="route/routing.json")
def probe_route(run: Run, cost: CostRecord, expert: Path) -> None:
    """Stages I–III (`pipeline.stages.probe_and_route`) with the plan's router and metric."""
    from prismrl.pipeline.stages import probe_and_route

    result = probe_and_route(_probe_route_config(run, expert, "route", run.cfg.model))
    # What this run probed: records resumed from an earlier try or shared by `prism grid` were
    # counted where they were computed.
    cost.add(backward=result.probe.tokens if result.probe else 0)


@phase("reprobe", output="reroute", done="reroute/routing.json")
def reprobe_route(run: Run, cost: CostRecord, expert: Path, sft_model: str) -> None:
    """Stages I–III again, every trajectory probed with the SFT checkpoint instead of the base
    model; the run's RL phase takes this routing's RL half. Every trajectory, not only the first
    RL half: the median split needs scores from one model, and it keeps the RL share (and so the RL
    budget) equal to prism-gini's."""
    from prismrl.pipeline.stages import probe_and_route

    result = probe_and_route(_probe_route_config(run, expert, "reroute", sft_model))
    cost.add(backward=result.probe.tokens if result.probe else 0)


@phase(None, output="route", done="route/routing.json")
def plain_route(run: Run, cost: None, expert: Path) -> None:
    """The routers that need no gradient probe: random, pass-rate (from `pass_rates`), and the
    premise testbed's oracles that route by the known conflicting task type."""
    from prismrl.data.format import CannotEncode, encode
    from prismrl.data.io import load_trajectories
    from prismrl.models import load_tokenizer
    from prismrl.pipeline.stages import write_halves
    from prismrl.prism.route import halves_by_score, route

    cfg, router = run.cfg, run.plan.router
    rl_share = cfg.route.get("rl_share", 0.5)
    trajectories = load_trajectories(expert)[0]
    # They must route the same trajectories as the probing routers: leave out what the probe would
    # flag for not fitting its context length (SFT could not train on it).
    tokenizer, excluded = load_tokenizer(cfg.model), {}
    for t in trajectories:
        try:
            encode(t, tokenizer, _probe_max_length(run))
        except CannotEncode as error:
            excluded[t.id] = str(error)
    kept = [t for t in trajectories if t.id not in excluded]
    if router == "random":
        routing = route([{"id": t.id} for t in kept], router, rl_share=rl_share, seed=cfg.seed).to_dict()
    else:
        if router == "pass-rate":
            rates = json.loads(pass_rates(run, expert).read_text())
            metric, scores = "base pass rate", {t.id: rates[t.task_id] for t in kept}
        else:  # conflict / conflict-inverse: the testbed's known conflicting tasks (envs/mirror) to RL / to SFT
            sign = 1.0 if router == "conflict" else -1.0
            conflict = cfg.route["conflict_type"]
            metric, scores = f"task type {conflict}", {t.id: sign * float(t.meta.get("task_type") == conflict) for t in kept}
        # Many trajectories share a score (a rate of 0 or 1 at small k, one task type); a seeded draw,
        # not id order, breaks those ties so that ids that group by type do not fill a half.
        ids_sft, ids_rl, threshold = halves_by_score(scores, rl_share, tie_seed=cfg.seed)
        routing = {
            "router": router,
            "metric": metric,
            "threshold": threshold,
            "rl_share": rl_share,
            "ids_sft": ids_sft,
            "ids_rl": ids_rl,
            "scores": scores,
        }
    write_halves(run.out / "route", trajectories, {**routing, "excluded": excluded})


def sft_config(run: Run, data: Path):
    """The SFT phase's SFTTrainConfig (no model loaded)."""
    from prismrl.train.sft import SFTTrainConfig

    cfg = run.cfg
    options = {"max_length": _probe_max_length(run), **cfg.sft}
    return build(
        SFTTrainConfig,
        {
            "model": cfg.model,
            "data": str(data),
            "out": str(run.out / "sft"),
            "seed": cfg.seed,
            "dtype": cfg.dtype,
            "device": cfg.device,
            "resume": True,
            **options,
        },
        "sft",
    )


@phase("sft", output="sft/final", done="sft/final/config.json")
def sft(run: Run, cost: CostRecord, data: Path) -> None:
    from prismrl.train.sft import train_sft

    summary = train_sft(sft_config(run, data))
    cost.add(backward=int(summary["tokens"] * (summary.get("epochs") or 1)))
    drop_checkpoints(run, run.out / "sft")


def drop_checkpoints(run: Run, folder: Path) -> None:
    """Once a training phase has written final/, its checkpoint-* folders are deleted unless the
    config keeps them (RunConfig.keep_checkpoints: they resume only an unfinished phase)."""
    if run.cfg.keep_checkpoints:
        return
    for checkpoint in folder.glob("checkpoint-*"):
        if checkpoint.is_dir():
            shutil.rmtree(checkpoint)


def rl_config(run: Run, model: str, tasks: list[str]):
    """The RL phase's RLConfig (no model loaded): the agent context, the plan's advantage, the rl section."""
    from prismrl.train.rl import RLConfig

    cfg = run.cfg
    options = {"advantage": run.plan.advantage, **cfg.agent, **cfg.rl}
    return build(
        RLConfig,
        {
            "model": model,
            "env": cfg.env,
            "env_config": cfg.env_config,
            "tasks": tasks,
            "out": str(run.out / "rl"),
            "seed": cfg.seed,
            "dtype": cfg.dtype,
            "device": cfg.device,
            "n_workers": cfg.n_workers,
            **options,
        },
        "rl",
    )


@phase("rl", output="rl/final", done="rl/final/config.json")
def rl(run: Run, cost: CostRecord, model: str, tasks: list[str]) -> None:
    from prismrl.fileio import read_jsonl_prefix
    from prismrl.train import run_rl

    run_rl(rl_config(run, model, tasks))
    for m in read_jsonl_prefix(run.out / "rl" / "rl_metrics.jsonl"):
        cost.add(forward=m.get("prompt_tokens", 0), backward=m.get("update_tokens", 0), generated=m.get("tokens_generated", 0))
    drop_checkpoints(run, run.out / "rl")


def eval_config(run: Run, model: str, split: str):
    """The evaluation phase's EvalConfig for one split (no model loaded)."""
    from prismrl.evaluate import EvalConfig

    cfg = run.cfg
    options = {**cfg.agent, **{k: v for k, v in cfg.eval.items() if k != "splits"}}
    return build(
        EvalConfig,
        {
            "model": model,
            "env": cfg.env,
            "env_config": cfg.env_config,
            "split": split,
            "out": str(run.out / "eval" / split),
            "seed": cfg.seed,
            "dtype": cfg.dtype,
            "device": cfg.device,
            "n_workers": cfg.n_workers,
            **options,
        },
        "eval",
    )


@phase("eval", output="eval/{split}/results.json", note="{split}")
def evaluate(run: Run, cost: CostRecord, model: str, *, split: str) -> None:
    from prismrl.evaluate import evaluate as evaluate_model

    results = evaluate_model(eval_config(run, model, split), progress=True)
    cost.add(forward=results["prompt_tokens"], generated=results["generated_tokens"])
