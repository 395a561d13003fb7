"""`prism run`: the whole pipeline — data → probe → route → SFT → RL → eval — and every baseline
of the paper as a configuration of the same runner.

Each phase writes into its own folder of the run and is skipped when its output exists, so a
crashed run resumes where it stopped (each phase is itself resumable inside). Every phase appends
its cost to `ledger.jsonl`.

    method         SFT on            RL on the tasks of       router
    base           –                 –                        –
    sft-all        all               –                        –
    rl-all         –                 all                      –          (GRPO; rl-all-gigpo: GiGPO)
    sft-then-rl    all               all                      –
    prism-gini     SFT half          RL half                  Gini (prism-kurtosis, prism-cv)
    inverse        SFT half          RL half                  Gini, high → SFT
    random / magnitude / loss / length / pass-rate            (same halves, another router)
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from prismrl.config import build, parse_yaml, read_yaml, typed_options
from prismrl.data.format import DEFAULT_MAX_LENGTH
from prismrl.errors import ConfigError, ConfigWarning
from prismrl.fileio import atomic_write_json, atomic_write_text
from prismrl.models import BUILTIN_DEFAULT, count_parameters


@dataclass(frozen=True)
class Plan:
    sft: str | None = None  # "all" | "half" | None
    rl: str | None = None
    router: str | None = None
    metric: str = "gini"
    advantage: str = "grpo"


METHODS = {
    "base": Plan(),
    "sft-all": Plan(sft="all"),
    "rl-all": Plan(rl="all"),
    "rl-all-gigpo": Plan(rl="all", advantage="gigpo"),
    "sft-then-rl": Plan(sft="all", rl="all"),
    "prism-gini": Plan("half", "half", "prism", "gini"),
    "prism-kurtosis": Plan("half", "half", "prism", "kurtosis"),
    "prism-cv": Plan("half", "half", "prism", "cv"),
    "inverse": Plan("half", "half", "inverse", "gini"),
    "random": Plan("half", "half", "random"),
    "magnitude": Plan("half", "half", "magnitude"),
    "loss": Plan("half", "half", "loss"),
    "length": Plan("half", "half", "length"),
    "pass-rate": Plan("half", "half", "pass-rate"),
}


AGENT_CONTEXT = ("max_new_tokens", "max_turns", "history_window", "max_prompt_tokens", "kv_cache")


# The small sections of a run, typed so that a misspelt key or a `5e-1` that YAML reads as a
# string is refused when the run is loaded, not after an hour of earlier phases.
@dataclass
class GenerateSection:
    split: str = "train"
    n: int = 64
    max_turns: int | None = None  # the expert's step cap per episode (None: the env's), as agent.max_turns


@dataclass
class ProbeSection:
    max_length: int = DEFAULT_MAX_LENGTH
    normalize: str = "none"


@dataclass
class RouteSection:
    rl_share: float = 0.5


@dataclass
class PassRateSection:
    k: int = 4
    temperature: float = 1.0


@dataclass
class RunConfig:
    method: str = "prism-gini"
    model: str = BUILTIN_DEFAULT
    env: str = "webshop"
    env_config: dict = field(default_factory=dict)
    data: str | None = None  # expert trajectories; None → generated with the env's expert
    games: dict = field(default_factory=dict)  # ALFWorld offline: {split: n} procedural games made first
    generate: dict = field(default_factory=lambda: asdict(GenerateSection()))
    seed: int = 0
    dtype: str = "float32"
    device: str | None = None
    n_workers: int = 0  # env worker processes for rollouts (0: in-process)
    probe: dict = field(default_factory=lambda: asdict(ProbeSection()))
    route: dict = field(default_factory=lambda: asdict(RouteSection()))
    pass_rate: dict = field(default_factory=lambda: asdict(PassRateSection()))
    # The agent's context, set once and shared by RL, evaluation and the pass-rate rollouts, so the
    # policy is measured in the context it was trained in (AGENT_CONTEXT keys; unset keys take the
    # RLConfig / EvalConfig defaults, which agree; max_turns defaults to the env's step cap).
    agent: dict = field(default_factory=dict)
    sft: dict = field(default_factory=dict)  # SFTTrainConfig fields
    rl: dict = field(default_factory=dict)  # RLConfig fields
    eval: dict = field(default_factory=lambda: {"splits": ["test"]})  # EvalConfig fields + splits


def load_run_config(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    """YAML file, then `key=value` / `section.key=value` overrides (values parsed as YAML)."""
    values: dict[str, Any] = (read_yaml(path) if path else None) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a run config must be a mapping of option: value")
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"override {override!r} must look like key=value or section.key=value")
        dotted, raw = override.split("=", 1)
        target = values
        *parents, leaf = dotted.split(".")
        for parent in parents:
            target = target.setdefault(parent, {}) if isinstance(target, dict) else target
        if not isinstance(target, dict):
            raise ConfigError(f"override {override!r}: {'.'.join(parents)} is not a section")
        target[leaf] = parse_yaml(raw, f"--set {override}")
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown run option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for name, value in values.items():
        if name in SECTIONS and not isinstance(value, dict):
            raise ConfigError(f"run option {name}: expected a section of key: value lines, got {value!r}")
    for section in ("rl", "eval", "pass_rate"):
        repeated = [k for k in values.get(section, {}) if k in AGENT_CONTEXT]
        if repeated:
            raise ConfigError(
                f"{', '.join(f'{section}.{k}' for k in repeated)}: the agent context is set once, in "
                f"`agent:` ({', '.join(AGENT_CONTEXT)}), and shared by RL, evaluation and pass-rate"
            )
    values = {name: _checked_section(name, value) if name in SECTIONS else value for name, value in values.items()}
    cfg = build(RunConfig, values)
    if cfg.method not in METHODS:
        raise ConfigError(f"unknown method {cfg.method!r}; use one of {', '.join(METHODS)}")
    if cfg.sft.get("max_length", cfg.probe["max_length"]) != cfg.probe["max_length"]:
        # PRISM scores a trajectory by the gradient of the loss SFT would train on; cut elsewhere,
        # the probe measures other tokens than SFT then learns from
        warnings.warn(
            f"sft.max_length {cfg.sft['max_length']} differs from probe.max_length {cfg.probe['max_length']}: "
            "the probe measures the SFT loss of other tokens than SFT trains on (leave sft.max_length unset "
            "to use the probe's)",
            ConfigWarning,
            stacklevel=2,
        )
    return cfg


SECTIONS = ("generate", "probe", "route", "pass_rate", "agent", "sft", "rl", "eval")


def _checked_section(name: str, values: dict) -> dict:
    """One section's keys checked and values typed against what it feeds. The small sections merge
    into their defaults; sft / rl / eval hold only what the config sets (the phase fills the rest)."""
    from prismrl.evaluate import EvalConfig
    from prismrl.train.rl import RLConfig
    from prismrl.train.sft import SFTTrainConfig

    small = {"generate": GenerateSection, "probe": ProbeSection, "route": RouteSection, "pass_rate": PassRateSection}
    if name in small:
        return asdict(build(small[name], values, name))
    if name == "eval":
        splits = values.get("splits", ["test"])
        return {"splits": splits, **typed_options(EvalConfig, {k: v for k, v in values.items() if k != "splits"}, name)}
    if name == "agent":
        unknown = sorted(set(values) - set(AGENT_CONTEXT))
        if unknown:
            raise ConfigError(f"unknown agent option(s) {', '.join(unknown)}; known: {', '.join(AGENT_CONTEXT)}")
    return typed_options({"agent": RLConfig, "sft": SFTTrainConfig, "rl": RLConfig}[name], values, name)


def _task_ids(path: Path) -> list[str]:
    from prismrl.data.io import load_trajectories

    return sorted({t.task_id for t in load_trajectories(path)[0]})


def _alfworld_games(cfg: RunConfig, out: Path) -> None:
    """Generate the configured ALFWorld-procedural games into the run and point the env at them."""
    from prismrl.envs.alfworld.generate import generate_games

    games_dir = out / "games"
    for split, n in cfg.games.items():
        generate_games(split, n, games_dir, seed=cfg.seed, workers=max(1, cfg.n_workers))
    cfg.env_config = {**cfg.env_config, "data_dir": str(games_dir)}


def _expert_data(cfg: RunConfig, out: Path) -> Path:
    if cfg.data:
        return Path(cfg.data)
    from prismrl.data.generate import generate

    target = out / "data" / "expert.jsonl"
    marker = out / "data" / "generate_report.json"
    if not marker.exists():
        options = cfg.generate
        report = generate(cfg.env, options["split"], options["n"], target, cfg.env_config, options.get("max_turns"))
        atomic_write_json(marker, {"kept": report.kept, "expert_lost": report.failed, "engine_errors": report.errors})
    return target


def _pass_rates(cfg: RunConfig, expert: Path, out: Path) -> dict[str, float]:
    """HPT-style signal: base-model success rate over k rollouts of each trajectory's task."""
    from prismrl import ledger
    from prismrl.rollout import rollout
    from prismrl.envs.base import agent_env_config
    from prismrl.envs.pool import EnvPool
    from prismrl.models import load_model
    from prismrl.train.rl import RLConfig, rollout_sampling

    target = out / "route" / "pass_rates.json"
    if target.exists():
        return json.loads(target.read_text())
    model, tokenizer, _ = load_model(cfg.model, cfg.dtype, cfg.device)
    k = cfg.pass_rate["k"]
    tasks = _task_ids(expert)
    # The rollouts RL will run (its sampling and context settings, defaults included), so the rate
    # measures what RL would see.
    sampling = rollout_sampling(build(RLConfig, {**cfg.agent, **cfg.rl}, "rl"))
    if "temperature" in cfg.pass_rate:
        sampling = replace(sampling, temperature=cfg.pass_rate["temperature"])
    wins: dict[str, list[bool]] = {t: [] for t in tasks}
    with (
        ledger.phase("pass-rate", out, sum(p.numel() for p in model.parameters())) as cost,
        EnvPool(cfg.env, agent_env_config(cfg.env, cfg.env_config), cfg.n_workers) as pool,
    ):
        for start in range(0, len(tasks), 8):
            batch = [t for t in tasks[start : start + 8] for _ in range(k)]
            for episode in rollout(model, tokenizer, pool, cfg.env, batch, sampling, seed=cfg.seed + start):
                wins[episode.task_id].append(episode.won)
                cost.add(forward=sum(len(t.prompt_ids) for t in episode.turns), generated=sum(len(t.response_ids) for t in episode.turns))
    rates = {t: sum(w) / len(w) for t, w in wins.items()}
    atomic_write_json(target, rates)
    return rates


def _write_halves(expert: Path, route_dir: Path, ids_sft: list[str], ids_rl: list[str], split: dict) -> None:
    from prismrl.data.io import load_trajectories, save_trajectories

    by_id = {t.id: t for t in load_trajectories(expert)[0]}
    save_trajectories([by_id[i] for i in ids_sft], route_dir / "sft.jsonl")
    save_trajectories([by_id[i] for i in ids_rl], route_dir / "rl.jsonl")
    atomic_write_json(route_dir / "split.json", split)


def _route(cfg: RunConfig, plan: Plan, expert: Path, out: Path) -> Path:
    """The SFT and RL halves in out/route/. Random and pass-rate need no gradient probe."""
    from prismrl import ledger
    from prismrl.config import RouteConfig
    from prismrl.data.io import load_trajectories
    from prismrl.pipeline import probe_and_route
    from prismrl.route import route, split_by_score

    route_dir = out / "route"
    if (route_dir / "split.json").exists():
        return route_dir
    rl_share = cfg.route.get("rl_share", 0.5)
    trajectories, excluded = load_trajectories(expert)[0], {}
    if plan.router in ("pass-rate", "random"):
        # These routers skip the probe, but must route the same trajectories as the others: leave
        # out what the probe would flag for not fitting its context length (SFT could not train on it).
        from prismrl.data.format import CannotEncode, encode
        from prismrl.models import load_tokenizer

        tokenizer = load_tokenizer(cfg.model)
        for t in trajectories:
            try:
                encode(t, tokenizer, cfg.probe.get("max_length", DEFAULT_MAX_LENGTH))
            except CannotEncode as error:
                excluded[t.id] = str(error)
    kept = [t for t in trajectories if t.id not in excluded]
    if plan.router == "pass-rate":
        rates = _pass_rates(cfg, expert, out)
        scores = {t.id: rates[t.task_id] for t in kept}
        # Many tasks share a rate (0 or 1 at small k); a seeded draw, not id order, breaks those ties
        # so that one task type (ALFWorld ids group by type) does not fill a half.
        ids_sft, ids_rl, threshold = split_by_score(scores, rl_share, tie_seed=cfg.seed)
        _write_halves(
            expert,
            route_dir,
            ids_sft,
            ids_rl,
            {
                "router": "pass-rate",
                "metric": "base pass rate",
                "threshold": threshold,
                "rl_share": rl_share,
                "ids_sft": ids_sft,
                "ids_rl": ids_rl,
                "scores": scores,
                "excluded": excluded,
            },
        )
    elif plan.router == "random":
        split = route([{"id": t.id} for t in kept], "random", rl_share=rl_share, seed=cfg.seed)
        _write_halves(expert, route_dir, split.ids_sft, split.ids_rl, {**split.to_dict(), "excluded": excluded})
    else:
        route_cfg = RouteConfig(
            data=str(expert),
            out=str(route_dir),
            model=cfg.model,
            dtype=cfg.dtype,
            device=cfg.device,
            router=plan.router,
            metric=plan.metric,
            seed=cfg.seed,
            rl_share=rl_share,
            max_length=cfg.probe.get("max_length", DEFAULT_MAX_LENGTH),
            normalize=cfg.probe.get("normalize", "none"),
        )
        with ledger.phase("probe", out, count_parameters(cfg.model)) as cost:
            probe_and_route(route_cfg)
            probed = [json.loads(line) for line in (route_dir / "probe.jsonl").read_text().splitlines()]
            cost.add(backward=sum(r.get("n_tokens") or 0 for r in probed))
    return route_dir


def _sft(cfg: RunConfig, data: Path, out: Path) -> str:
    from prismrl import ledger
    from prismrl.train.sft import SFTTrainConfig, train_sft

    sft_dir = out / "sft"
    if (sft_dir / "final" / "config.json").exists():
        return str(sft_dir / "final")
    options = {"max_length": cfg.probe.get("max_length", DEFAULT_MAX_LENGTH), **cfg.sft}
    sft_cfg = build(
        SFTTrainConfig,
        {
            "model": cfg.model,
            "data": str(data),
            "out": str(sft_dir),
            "seed": cfg.seed,
            "dtype": cfg.dtype,
            "device": cfg.device,
            "resume": True,
            **options,
        },
        "sft",
    )
    with ledger.phase("sft", out, count_parameters(cfg.model)) as cost:
        summary = train_sft(sft_cfg)
        cost.add(backward=int(summary["tokens"] * (summary.get("epochs") or 1)))
    return str(sft_dir / "final")


def _rl(cfg: RunConfig, plan: Plan, model: str, tasks: list[str], out: Path) -> str:
    from prismrl import ledger
    from prismrl.fileio import read_jsonl_prefix
    from prismrl.train.rl import RLConfig, train_rl

    rl_dir = out / "rl"
    if (rl_dir / "final" / "config.json").exists():
        return str(rl_dir / "final")
    options = {"advantage": plan.advantage, **cfg.agent, **cfg.rl}
    rl_cfg = build(
        RLConfig,
        {
            "model": model,
            "env": cfg.env,
            "env_config": cfg.env_config,
            "tasks": tasks,
            "out": str(rl_dir),
            "seed": cfg.seed,
            "dtype": cfg.dtype,
            "device": cfg.device,
            "n_workers": cfg.n_workers,
            **options,
        },
        "rl",
    )
    with ledger.phase("rl", out, count_parameters(model)) as cost:
        train_rl(rl_cfg)
        for m in read_jsonl_prefix(rl_dir / "rl_metrics.jsonl"):
            cost.add(forward=m.get("prompt_tokens", 0), backward=m.get("update_tokens", 0), generated=m.get("tokens_generated", 0))
    return str(rl_dir / "final")


def _evaluate(cfg: RunConfig, model: str, out: Path) -> dict[str, dict]:
    from prismrl import ledger
    from prismrl.evaluate import EvalConfig, evaluate

    options = {**cfg.agent, **{k: v for k, v in cfg.eval.items() if k != "splits"}}
    results = {}
    for split in cfg.eval.get("splits", ["test"]):
        target = out / "eval" / split
        if (target / "results.json").exists():
            results[split] = json.loads((target / "results.json").read_text())
            continue
        eval_cfg = build(
            EvalConfig,
            {
                "model": model,
                "env": cfg.env,
                "env_config": cfg.env_config,
                "split": split,
                "out": str(target),
                "seed": cfg.seed,
                "dtype": cfg.dtype,
                "device": cfg.device,
                "n_workers": cfg.n_workers,
                **options,
            },
            "eval",
        )
        with ledger.phase("eval", out, count_parameters(model), note=split) as cost:
            results[split] = evaluate(eval_cfg, progress=True)
            cost.add(forward=results[split]["prompt_tokens"], generated=results[split]["generated_tokens"])
    return results


def run(cfg: RunConfig, out: str | Path) -> dict:
    """Run (or resume) one method's pipeline into `out`; returns the summary also written there."""
    from prismrl import ledger

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config_file = out / "config.yaml"
    resolved = yaml.safe_dump(asdict(cfg), sort_keys=False)
    if config_file.exists() and config_file.read_text() != resolved:
        raise ConfigError(f"{out} holds a run with another config ({config_file}); use a new --out to change settings")
    atomic_write_text(config_file, resolved)
    plan = METHODS[cfg.method]
    if cfg.games:
        if cfg.env != "alfworld":
            raise ConfigError("`games` generates ALFWorld-procedural games; it only applies to env: alfworld")
        _alfworld_games(cfg, out)
    expert = _expert_data(cfg, out) if (plan.sft or plan.rl) else None
    if plan.router:
        route_dir = _route(cfg, plan, expert, out)
        sft_data, rl_data = route_dir / "sft.jsonl", route_dir / "rl.jsonl"
    else:
        sft_data = rl_data = expert
    model = cfg.model
    if plan.sft:
        model = _sft(cfg, sft_data, out)
    if plan.rl:
        model = _rl(cfg, plan, model, _task_ids(rl_data), out)
    results = _evaluate(cfg, model, out)
    summary = {
        "method": cfg.method,
        "final_model": model,
        "eval": {
            split: {k: r[k] for k in ("success", "score", "mean_steps", "success_by_type", "episodes")} for split, r in results.items()
        },
        "cost": ledger.total(out),
    }
    atomic_write_json(out / "summary.json", summary)
    return summary
