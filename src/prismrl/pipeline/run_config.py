"""What `prism run` runs: every method of the paper as a plan of the same phases, and the run
config (YAML + `--set` overrides, strict keys, typed values).

    method         SFT on            RL on the tasks of       router
    base           –                 –                        –
    sft-all        all               –                        –
    rl-all         –                 all                      –          (GRPO; rl-all-gigpo: GiGPO)
    sft-then-rl    all               all                      –
    prism-gini     SFT half          RL half                  Gini (prism-kurtosis, prism-cv)
    inverse        SFT half          RL half                  Gini, high → SFT
    random / magnitude / loss / length / pass-rate            (same halves, another router)
    conflict-to-rl / conflict-to-sft                          (the premise testbed's oracles: envs/mirror)
    prism-gini-reprobe: prism-gini, then RL on the high-Gini half of a second probe by the SFT checkpoint
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from prismrl.config import build, parse_yaml, read_yaml, typed_options
from prismrl.data.format import DEFAULT_MAX_LENGTH
from prismrl.errors import ConfigError, ConfigWarning
from prismrl.models import BUILTIN_DEFAULT


@dataclass(frozen=True)
class Plan:
    sft: str | None = None  # "all" | "half" | None
    rl: str | None = None
    router: str | None = None
    metric: str = "gini"
    advantage: str = "grpo"
    reprobe: bool = False  # choose the RL tasks again by probing every trajectory with the SFT checkpoint

    @property
    def probes(self) -> bool:
        """Whether its router needs the gradient probe (random, pass-rate and the oracles route without it)."""
        return self.router is not None and self.router not in NO_PROBE_ROUTERS


METHODS = {
    "base": Plan(),
    "sft-all": Plan(sft="all"),
    "rl-all": Plan(rl="all"),
    "rl-all-gigpo": Plan(rl="all", advantage="gigpo"),
    "sft-then-rl": Plan(sft="all", rl="all"),
    "prism-gini": Plan("half", "half", "prism", "gini"),
    "prism-kurtosis": Plan("half", "half", "prism", "kurtosis"),
    "prism-cv": Plan("half", "half", "prism", "cv"),
    # The routing is decided once, on the base model (the paper's stated limitation); this variant
    # trains SFT on the same half, then probes every trajectory again with the SFT checkpoint and
    # runs RL on the tasks of that probe's high-Gini half (same share, so the same RL budget).
    "prism-gini-reprobe": Plan("half", "half", "prism", "gini", reprobe=True),
    "inverse": Plan("half", "half", "inverse", "gini"),
    "random": Plan("half", "half", "random"),
    "magnitude": Plan("half", "half", "magnitude"),
    "loss": Plan("half", "half", "loss"),
    "length": Plan("half", "half", "length"),
    "pass-rate": Plan("half", "half", "pass-rate"),
    # The premise testbed's oracles (envs/mirror): trajectories of route.conflict_type to RL, or to SFT.
    "conflict-to-rl": Plan("half", "half", "conflict"),
    "conflict-to-sft": Plan("half", "half", "conflict-inverse"),
}
NO_PROBE_ROUTERS = ("random", "pass-rate", "conflict", "conflict-inverse")


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
    conflict_type: str = "mirror"  # conflict-to-rl / conflict-to-sft: the task type known to conflict with the prior


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
    dtype: str = "float32"  # compute precision of every phase (models.resolve_dtype)
    device: str | None = None
    n_workers: int = 0  # env worker processes for rollouts (0: in-process)
    # A finished SFT or RL phase's checkpoint-* folders only served to resume it (the run resumes at
    # its final/ from then on); with AdamW state one of SmolLM2's is 1.6 GB and up to three are kept,
    # so a grid of ~40 runs would fill ~300 GB with files nothing reads. True keeps them.
    keep_checkpoints: bool = False
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
