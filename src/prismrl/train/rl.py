"""Multi-turn GRPO on environment tasks: the paper's RL stage (with GiGPO advantages as an option),
following verl-agent (langfengQ/verl-agent, built on verl).

Budget: steps = ceil(epochs · |tasks| / tasks_per_step) (`steps` overrides it), so halving the
RL task set halves the RL work (method.md). Each step:
  1. sample `tasks_per_step` tasks (paper 16) from the given list (never any other task);
  2. play `group_size` episodes of each (paper 8; same start state within a group), batched;
  3. drop episodes that ended in an environment error (counted in `errors`, never trained on);
  4. score each turn: the episode's environment reward minus `invalid_penalty` (paper 0.1) if
     that turn's action was invalid (verl-agent: reward_manager/episode.py puts the episode
     reward on every step row; the penalty lands on the invalid step's row only);
  5. advantage of a turn = (score − mean) / (std + ε) over all turn rows of its group, std
     unbiased as torch.std (verl-agent's compute_mean_std_cross_all_data); GiGPO adds a step-level
     advantage from turns that saw the same observation;
  6. one PPO-clipped policy-gradient update (clip 0.2) on the tokens the policy generated in every
     turn, with the k3 KL (clamped to [−10, 10], verl's low_var_kl; coef 0.01) towards the
     starting model; token-mean over the batch; lr 1e-6.
"""

from __future__ import annotations

import copy
import inspect
import math
import random
import shutil
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from prismrl.envs.base import episode_step_cap
from prismrl.errors import ConfigError, TrainingDiverged
from prismrl.fileio import JsonlAppender, atomic_dir, atomic_write_json, atomic_write_jsonl, read_jsonl_prefix
from prismrl.heartbeat import Heartbeat
from prismrl.padding import attention_inputs, attention_mask, padded
from prismrl.rollout import Episode, SamplingConfig, rollout
from prismrl.train.curve import plot_rl


@dataclass
class RLConfig:
    model: str = ""  # base model or an SFT output folder
    env: str = "alfworld"
    env_config: dict = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)  # the only tasks RL may sample (the RL half)
    out: str = ""
    # The RL budget is epochs over `tasks` (method.md: halving the routed RL tasks halves the RL
    # work): steps = ceil(epochs · |tasks| / tasks_per_step). `steps`, if set, overrides it.
    epochs: float = 1.0
    steps: int | None = None
    tasks_per_step: int = 16  # paper: 16
    group_size: int = 8  # paper: 8
    lr: float = 1e-6  # paper: 1e-6
    kl_coef: float = 0.01  # paper: 0.01 (KL loss)
    clip_eps: float = 0.2
    invalid_penalty: float = 0.1  # paper: 0.1
    # What RL trains on. success: 10 × won, as verl-agent (env_package/alfworld/envs.py
    # compute_reward; WebShop likewise 10 × [score == 1]); score: the env's graded reward
    # (WebShop's 0–1 score). The graded reward is logged either way (`env_reward`).
    reward: str = "success"
    advantage: str = "grpo"  # or gigpo
    gigpo_gamma: float = 0.95
    gigpo_weight: float = 1.0
    # verl-agent gigpo/core_gigpo.py: mean_std_norm (÷ unbiased std) or mean_norm (mean only)
    gigpo_mode: str = "mean_std_norm"
    ppo_epochs: int = 1
    ppo_mini_batch_size: int | None = None  # samples per optimizer step; None: the whole rollout batch
    entropy_coef: float = 0.001  # verl actor entropy_coeff
    micro_batch_size: int = 8
    max_grad_norm: float = 1.0
    temperature: float = 1.0  # paper trains at 1.0
    # nucleus sampling of the rollouts (verl-agent's WebShop recipe: 0.9); the PPO ratio and KL use the
    # full temperature-scaled distribution, as verl's log-prob pass does
    top_p: float = 1.0
    compute_mean_std_cross_all_data: bool = True  # verl-agent's default: group statistics over all turn rows
    max_new_tokens: int = 96
    max_turns: int | None = None  # None: the env's own cap (envs.base.EPISODE_STEP_CAPS), as in evaluation
    history_window: int | None = 8
    max_prompt_tokens: int = 2048
    kv_cache: bool = False  # keep each episode's KV cache between turns (prismrl.rollout.kv_cache)
    # prismrl: this module, the readable reference in one process. trl: TRL's GRPOTrainer driving the
    # same rollouts (train.rl_trl), for accelerate launches past one process (its differences listed there)
    trainer: str = "prismrl"
    backend: str = "transformers"  # or vllm: rollouts by vLLM (GPU), weights pushed after each update
    vllm_gpu_memory: float = 0.3  # share of the GPU vLLM may take; the policy, reference and optimizer need the rest
    n_workers: int = 0
    save_steps: int = 10
    # older checkpoints are deleted, as SFTTrainConfig.save_total_limit (one of SmolLM2's holds the
    # model and AdamW's state: 1.6 GB); None keeps all, resume needs only the latest
    save_total_limit: int | None = 3
    seed: int = 0
    dtype: str = "float32"  # compute precision (autocast on CUDA); weights stay float32 (models.resolve_dtype)
    device: str | None = None


class TaskSampler:
    """Epochs over a fixed task list in a seeded shuffle; step k's tasks depend only on (seed, k)."""

    def __init__(self, task_ids: list[str], per_step: int, seed: int):
        if not task_ids:
            raise ConfigError("RL needs at least one task id")
        self.task_ids = sorted(set(task_ids))
        self.per_step = min(per_step, len(self.task_ids))
        self.seed = seed

    def _order(self, epoch: int) -> list[str]:
        order = list(self.task_ids)
        random.Random(f"{self.seed}-{epoch}").shuffle(order)
        return order

    def tasks_for_step(self, step: int) -> list[str]:
        start = step * self.per_step
        chosen = []
        while len(chosen) < self.per_step:
            epoch, offset = divmod(start + len(chosen), len(self.task_ids))
            chosen.append(self._order(epoch)[offset])
        return chosen


def rollout_sampling(cfg: RLConfig) -> SamplingConfig:
    """How RL's rollouts sample and what context they see (also used for base pass rates)."""
    return SamplingConfig(
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_new_tokens=cfg.max_new_tokens,
        max_turns=cfg.max_turns or episode_step_cap(cfg.env),
        history_window=cfg.history_window,
        max_prompt_tokens=cfg.max_prompt_tokens,
        kv_cache=cfg.kv_cache,
    )


def total_steps(cfg: RLConfig) -> int:
    """cfg.steps if set, else ceil(epochs · |tasks| / tasks per step), the sampler's tasks per
    step (never more than there are tasks), so one epoch shows every task once."""
    if cfg.steps is not None:
        return cfg.steps
    n_tasks = len(set(cfg.tasks))
    per_step = min(cfg.tasks_per_step, n_tasks)
    return max(1, math.ceil(cfg.epochs * n_tasks / per_step - 1e-9))


def group_advantages(returns: list[float], eps: float = 1e-6, stats: list[float] | None = None) -> list[float]:
    """GRPO: (R − mean) / (std + ε) within one group, std unbiased (torch.std, as verl's
    compute_grpo_outcome_advantage); all-equal returns carry no signal (0). The mean and std are
    taken over `stats` when given (else over `returns`)."""
    values = np.asarray(returns, dtype=np.float64)
    reference = values if stats is None else np.asarray(stats, dtype=np.float64)
    if len(reference) < 2:  # verl: a lone member keeps mean 0, std 1; it has no group to compare with
        return [0.0] * len(values)
    std = reference.std(ddof=1)
    if std < eps:
        return [0.0] * len(values)
    return ((values - reference.mean()) / (std + eps)).tolist()


def gigpo_step_advantages(
    group: list[Episode], invalid_penalty: float, gamma: float, eps: float = 1e-6, reward: str = "score", mode: str = "mean_std_norm"
) -> list[list[float]]:
    """GiGPO's step level: turns of one group that acted from the same observation (an anchor
    state) form a step group; their discounted returns are normalised within it."""
    returns = []
    for episode in group:
        rewards = [t.reward - (invalid_penalty if not t.valid else 0.0) for t in episode.turns]
        if reward == "success" and rewards:  # the whole reward, 10 × won, arrives at the last turn
            rewards = [r - t.reward for r, t in zip(rewards, episode.turns)]
            rewards[-1] += episode_reward(episode, reward)
        discounted, running = [0.0] * len(rewards), 0.0
        for index in reversed(range(len(rewards))):
            running = rewards[index] + gamma * running
            discounted[index] = running
        returns.append(discounted)
    by_anchor = defaultdict(list)
    for e, episode in enumerate(group):
        for t, turn in enumerate(episode.turns):
            by_anchor[turn.observation].append((e, t))
    advantages = [[0.0] * len(episode.turns) for episode in group]
    for members in by_anchor.values():
        if len(members) < 2:
            continue
        values = np.array([returns[e][t] for e, t in members])
        if mode == "mean_norm":  # verl-agent's remove_std
            scale = 1.0
        elif mode == "mean_std_norm":
            scale = values.std(ddof=1) + eps  # torch.std, as core_gigpo.step_norm_reward
            if scale < 2 * eps:
                continue
        else:
            raise ConfigError(f"RLConfig.gigpo_mode must be mean_std_norm or mean_norm, got {mode!r}")
        for (e, t), value in zip(members, values):
            advantages[e][t] = float((value - values.mean()) / scale)
    return advantages


@dataclass
class Sample:
    """One training sequence: token ids, which of them the policy generated, and the advantage
    each generated token carries."""

    ids: list[int]
    generated: list[bool]
    advantages: list[float]

    @property
    def n_generated(self) -> int:
        return sum(self.generated)


def episode_samples(episode: Episode, turn_advantages: list[float]) -> list[Sample]:
    """The episode as few sequences as possible. When a turn's prompt extends the previous
    prompt + reply (no history window cut in between), the turns share one sequence, so one
    forward pass covers them all instead of one per turn; a windowed turn starts a new one."""
    samples: list[Sample] = []
    for turn, advantage in zip(episode.turns, turn_advantages):
        if not turn.response_ids:
            continue
        current = samples[-1] if samples else None
        if current is not None and turn.prompt_ids[: len(current.ids)] == current.ids:
            observation = turn.prompt_ids[len(current.ids) :]
        else:
            current = Sample([], [], [])
            samples.append(current)
            observation = turn.prompt_ids
        current.ids += observation + turn.response_ids
        current.generated += [False] * len(observation) + [True] * len(turn.response_ids)
        current.advantages += [0.0] * len(observation) + [advantage] * len(turn.response_ids)
    return samples


def episode_reward(episode: Episode, reward: str) -> float:
    if reward == "success":
        return 10.0 * float(episode.won)
    if reward == "score":
        return episode.reward
    raise ConfigError(f"RLConfig.reward must be success or score, got {reward!r}")


def turn_scores(episode: Episode, invalid_penalty: float, reward: str = "score") -> list[float]:
    """Each turn's score: the episode's reward minus the penalty if *that* turn's action was
    invalid. verl-agent puts the episode reward on every step row (agent_system/reward_manager/
    episode.py) and subtracts invalid_action_penalty_coef only from the rows whose
    is_action_valid is False; it is never summed over the episode."""
    base = episode_reward(episode, reward)
    return [base - (invalid_penalty if not t.valid else 0.0) for t in episode.turns]


def build_samples(episodes: list[Episode], cfg: RLConfig) -> tuple[list[Sample], list[float]]:
    """Training sequences whose generated tokens carry their turn's group-relative advantage
    (plus, for GiGPO, their step's). Episodes that ended in an environment error are left out
    of the group statistics and of the loss: they are not failures of the policy."""
    groups = defaultdict(list)
    for episode in episodes:
        if episode.error is None:
            groups[episode.task_id].append(episode)
    samples, returns = [], []
    for group in groups.values():
        scores = [turn_scores(e, cfg.invalid_penalty, cfg.reward) for e in group]
        returns += [float(np.mean(s)) if s else episode_reward(e, cfg.reward) for e, s in zip(group, scores)]
        rows = [x for s in scores for x in s]
        # verl-agent's compute_mean_std_cross_all_data: True (its default) takes the group's mean and
        # std over every step row; False counts each trajectory once, by its first row's score
        stats = rows if cfg.compute_mean_std_cross_all_data else [s[0] for s in scores if s]
        flat = group_advantages(rows, stats=stats)
        step_adv = (
            gigpo_step_advantages(group, cfg.invalid_penalty, cfg.gigpo_gamma, reward=cfg.reward, mode=cfg.gigpo_mode)
            if cfg.advantage == "gigpo"
            else None
        )
        offset = 0
        for e, episode in enumerate(group):
            n = len(episode.turns)
            per_turn = [flat[offset + t] + (cfg.gigpo_weight * step_adv[e][t] if step_adv else 0.0) for t in range(n)]
            offset += n
            samples += episode_samples(episode, per_turn)
    return samples, returns


def response_logprobs(model, samples: list[Sample], temperature: float, pad_id: int):
    """Per-token log-probabilities of each sample's tokens under `model` (right-padded batch),
    the mask of generated tokens, and the policy entropy there. Index t predicts token t+1; off
    the mask both are 0.

    The LM head and the full-vocabulary softmax run only where a generated token is predicted
    (`logits_to_keep`, as the batched probe does): prompts and observations are most of an
    episode's tokens, and their logits are never used."""
    device = next(model.parameters()).device
    ids = padded([s.ids for s in samples], pad_id, device=device)
    attention = attention_mask([len(s.ids) for s in samples], device=device)
    mask = padded([s.generated[1:] for s in samples], False, dtype=torch.bool, device=device)
    keep = torch.zeros_like(ids, dtype=torch.bool)
    keep[:, :-1] = mask
    kwargs = {"input_ids": ids, "use_cache": False, **attention_inputs(attention)}
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        kwargs["logits_to_keep"] = keep
    logits = model(**kwargs).logits
    if logits.dim() == 3:  # the model gave every position
        logits = logits[keep]
    logprobs = torch.log_softmax(logits.float() / temperature, dim=-1)
    picked = logprobs.gather(-1, ids[:, 1:][mask].unsqueeze(-1)).squeeze(-1)
    token_logprobs = torch.zeros(mask.shape, device=device, dtype=picked.dtype).masked_scatter(mask, picked)
    # differentiable: the loss may carry an entropy bonus (RLConfig.entropy_coef)
    entropy = torch.zeros(mask.shape, device=device, dtype=logprobs.dtype).masked_scatter(mask, -(logprobs.exp() * logprobs).sum(-1))
    return token_logprobs, mask, entropy


def token_advantages(samples: list[Sample], width: int, device) -> torch.Tensor:
    """(batch, width − 1) advantages aligned with `response_logprobs`' outputs."""
    table = torch.zeros((len(samples), width - 1), device=device)
    for row, sample in enumerate(samples):
        table[row, : len(sample.ids) - 1] = torch.tensor(sample.advantages[1:], device=device)
    return table


def grpo_loss(
    logprobs,
    old_logprobs,
    ref_logprobs,
    advantages,
    mask,
    clip_eps: float,
    kl_coef: float,
    n_tokens: int,
    entropy=None,
    entropy_coef: float = 0.0,
):
    """PPO-clipped surrogate + k3 KL − entropy bonus (verl's entropy_coeff), summed over
    response tokens and divided by the (mini-)batch's token count."""
    ratio = torch.exp(logprobs - old_logprobs)
    surrogate = torch.minimum(ratio * advantages, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages)
    per_token = -surrogate
    kl = torch.zeros_like(logprobs)
    if ref_logprobs is not None:
        delta = ref_logprobs - logprobs
        # verl core_algos.kl_penalty("low_var_kl"): k3, clamped to [-10, 10] against outliers
        kl = torch.clamp(torch.exp(delta) - delta - 1, min=-10.0, max=10.0)
        per_token = per_token + kl_coef * kl
    if entropy is not None and entropy_coef:
        per_token = per_token - entropy_coef * entropy
    return (per_token * mask).sum() / n_tokens, (kl * mask).sum().detach()


def _latest_checkpoint(out: Path) -> Path | None:
    """The Trainer's rule (highest checkpoint-N), so SFT and RL folders resume alike."""
    from transformers.trainer_utils import get_last_checkpoint

    latest = get_last_checkpoint(str(out)) if out.is_dir() else None
    return Path(latest) if latest else None


def _save_checkpoint(out: Path, step: int, model, tokenizer, optimizer, cfg: RLConfig) -> None:
    with atomic_dir(out / f"checkpoint-{step}") as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        torch.save({"optimizer": optimizer.state_dict(), "step": step, "torch_rng": torch.get_rng_state()}, staging / "trainer_state.pt")
        atomic_write_json(staging / "rl_config.json", asdict(cfg))
    if cfg.save_total_limit is not None:
        steps = sorted(int(p.name.split("-", 1)[1]) for p in out.glob("checkpoint-*") if p.name.split("-", 1)[1].isdigit())
        for old in steps[: -cfg.save_total_limit]:
            shutil.rmtree(out / f"checkpoint-{old}")


def mixed_precision(dtype: str, device: torch.device):
    """Autocast for bfloat16/float16 on a GPU; a no-op for float32 and on CPU."""
    from contextlib import nullcontext

    from prismrl.models import resolve_dtype

    amp = resolve_dtype(dtype)
    if amp == torch.float32 or device.type != "cuda":
        return nullcontext()
    return torch.autocast("cuda", dtype=amp)


def train_rl(cfg: RLConfig, progress: bool = True) -> dict:
    """Run GRPO for `total_steps(cfg)` steps, resuming from the latest checkpoint in cfg.out."""
    if cfg.trainer != "prismrl":
        raise ConfigError(f"train_rl is the reference trainer; trainer {cfg.trainer!r} runs through prismrl.train.run_rl")
    from prismrl.progress import Progress

    from prismrl.envs.base import agent_env_config
    from prismrl.envs.pool import EnvPool
    from prismrl.models import load_model

    if cfg.save_total_limit is not None and cfg.save_total_limit < 1:
        raise ConfigError(
            f"RLConfig.save_total_limit must be >= 1 (the latest checkpoint is what resumes) or None, got {cfg.save_total_limit}"
        )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "rl_config.json", asdict(cfg))
    sampler = TaskSampler(cfg.tasks, cfg.tasks_per_step, cfg.seed)
    n_steps = total_steps(cfg)
    checkpoint = _latest_checkpoint(out)
    # Weights stay float32 (AdamW steps of lr 1e-6 vanish in bfloat16 rounding); a half-precision
    # dtype runs the forward passes under autocast instead.
    model, tokenizer, name = load_model(str(checkpoint) if checkpoint else cfg.model, "float32", cfg.device)
    precision = mixed_precision(cfg.dtype, next(model.parameters()).device)
    reference = None
    if cfg.kl_coef > 0:
        reference = load_model(cfg.model, "float32", cfg.device)[0] if checkpoint else copy.deepcopy(model)
        reference.eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    start_step = 0
    if checkpoint:
        state = torch.load(checkpoint / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        start_step = state["step"]
    # Metrics and transcripts of steps past the checkpoint were lost with the crash's model state: drop them.
    for name in ("rl_metrics.jsonl", "rl_episodes.jsonl"):
        atomic_write_jsonl(out / name, [m for m in read_jsonl_prefix(out / name) if m["step"] <= start_step])
    sampling = rollout_sampling(cfg)
    engine = None
    if cfg.backend == "vllm":
        from prismrl.models import model_folder
        from prismrl.rollout.vllm import VLLMEngine

        engine = VLLMEngine(
            model_folder(str(checkpoint) if checkpoint else cfg.model),
            gpu_memory_utilization=cfg.vllm_gpu_memory,
            seed=cfg.seed,
            dtype=cfg.dtype,
        )
    elif cfg.backend != "transformers":
        raise ConfigError(f"RLConfig.backend must be transformers or vllm, got {cfg.backend!r}")
    summary: dict = {}
    with (
        EnvPool(cfg.env, agent_env_config(cfg.env, cfg.env_config), cfg.n_workers) as pool,
        JsonlAppender(out / "rl_metrics.jsonl") as metrics_sink,
        JsonlAppender(out / "rl_episodes.jsonl") as episodes_sink,
        Progress(disable=not progress) as bar,
        SummaryWriter(str(out / "tensorboard"), purge_step=start_step + 1) as board,
        Heartbeat(out, "rl") as beat,
    ):
        job = bar.add_task("GRPO", total=n_steps, completed=start_step)
        # an update of long episodes can take most of a step on CPU: show it, not a frozen bar
        update_job = bar.add_task("update", total=None, visible=False)
        for step in range(start_step, n_steps):
            started = time.perf_counter()
            beat(step=f"step {step + 1} of {n_steps}, rollout")
            tasks = sampler.tasks_for_step(step)
            model.eval()
            with precision:
                episodes = rollout(
                    model,
                    tokenizer,
                    pool,
                    cfg.env,
                    [t for t in tasks for _ in range(cfg.group_size)],
                    sampling,
                    seed=cfg.seed * 1_000_003 + step,
                    engine=engine,
                )
            rollout_seconds = time.perf_counter() - started
            for episode in episodes:  # the transcripts, to read what the policy did at each step
                episodes_sink.write({"step": step + 1, **episode.to_dict()})
            beat(step=f"step {step + 1} of {n_steps}, rollout done")
            bar.reset(update_job, visible=False)  # this step's update: its own clock and count
            with precision:
                metrics = update_policy(
                    model,
                    reference,
                    optimizer,
                    episodes,
                    cfg,
                    tokenizer.pad_token_id,
                    on_batch=lambda done, total: (
                        beat(step=f"step {step + 1} of {n_steps}, update micro-batch {done} of {total}"),
                        bar.update(
                            update_job, completed=done, total=total, visible=True, description=f"step {step + 1} update (micro-batches)"
                        ),
                    ),
                )
            bar.update(update_job, visible=False)
            if engine is not None and not metrics["skipped_update"]:
                engine.load_weights(model)
            metrics.update(step=step + 1, seconds=time.perf_counter() - started, rollout_seconds=rollout_seconds, tasks=sorted(set(tasks)))
            metrics_sink.write(metrics)
            plot_rl(read_jsonl_prefix(out / "rl_metrics.jsonl"), out / "rl_curve.png")  # a killed run keeps its curve
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
                    board.add_scalar(f"rl/{key}", value, step + 1)
            bar.update(job, advance=1, description=f"GRPO reward {metrics['reward']:.3f} success {metrics['success']:.2f}")
            if (step + 1) % cfg.save_steps == 0 or step + 1 == n_steps:
                _save_checkpoint(out, step + 1, model, tokenizer, optimizer, cfg)
            summary = metrics
    final = out / "final"
    if not final.exists():
        with atomic_dir(final) as staging:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
    return {**summary, "start_step": start_step, "final": str(final), "model": name}


def update_policy(model, reference, optimizer, episodes: list[Episode], cfg: RLConfig, pad_id: int, on_batch=None) -> dict:
    """One GRPO update on a step's episodes; `on_batch(done, total)` after each micro-batch."""
    samples, returns = build_samples(episodes, cfg)
    n_tokens = sum(s.n_generated for s in samples)
    stats = {
        "reward": float(np.mean(returns)) if returns else 0.0,
        "env_reward": float(np.mean([e.reward for e in episodes])),
        "success": float(np.mean([e.won for e in episodes])),
        "episode_length": float(np.mean([len(e.turns) for e in episodes])),
        "invalid_rate": float(np.mean([not t.valid for e in episodes for t in e.turns])) if n_tokens else 0.0,
        "errors": sum(e.error is not None for e in episodes),
        "tokens_generated": n_tokens,
        "samples": len(samples),
        "prompt_tokens": sum(len(t.prompt_ids) for e in episodes for t in e.turns),
        "update_tokens": cfg.ppo_epochs * sum(len(s.ids) for s in samples),
    }
    # A step whose groups all scored alike has zero advantages everywhere and is still trained:
    # verl's actor (dp_actor.update_policy) always steps on its loss, whose KL term and entropy bonus
    # have gradients of their own. Only a step that generated nothing has nothing to train.
    if not samples:
        return {**stats, "loss": 0.0, "kl": 0.0, "entropy": float("nan"), "skipped_update": True}
    model.train()
    kl_total, entropy_total, loss_total = 0.0, 0.0, 0.0
    # verl's actor: the rollout batch is cut into mini-batches of `ppo_mini_batch_size` samples,
    # one optimizer step each, repeated for `ppo_epochs`; each mini-batch is run in micro-batches.
    # Deviation: no shuffle between epochs (verl shuffles), so a run is easy to replay.
    mini_size = cfg.ppo_mini_batch_size or len(samples)
    minis = [samples[i : i + mini_size] for i in range(0, len(samples), mini_size)]
    plan = [[m[j : j + cfg.micro_batch_size] for j in range(0, len(m), cfg.micro_batch_size)] for m in minis]
    batches = [b for mini in plan for b in mini]
    n_updates = cfg.ppo_epochs * len(minis)
    old, ref = {}, {}
    with torch.no_grad():
        for index, batch in enumerate(batches):
            # With a single update per rollout the policy is the behaviour policy, so its own
            # detached log-probs are the "old" ones: ratio 1, same gradient, no extra forward.
            # With several, the old log-probs are taken once, before the first update.
            if n_updates > 1:
                old[index] = response_logprobs(model, batch, cfg.temperature, pad_id)[0]
            if reference is not None:
                ref[index] = response_logprobs(reference, batch, cfg.temperature, pad_id)[0]
    done = 0
    for epoch in range(cfg.ppo_epochs):
        index = 0
        for mini, mini_batches in zip(minis, plan):
            optimizer.zero_grad(set_to_none=True)
            mini_tokens = sum(s.n_generated for s in mini)
            for batch in mini_batches:
                logprobs, mask, entropy = response_logprobs(model, batch, cfg.temperature, pad_id)
                old_logprobs = old[index] if old else logprobs.detach()
                advantages = token_advantages(batch, logprobs.shape[1] + 1, logprobs.device)
                loss, kl = grpo_loss(
                    logprobs,
                    old_logprobs,
                    ref.get(index),
                    advantages,
                    mask,
                    cfg.clip_eps,
                    cfg.kl_coef,
                    max(mini_tokens, 1),
                    entropy=entropy,
                    entropy_coef=cfg.entropy_coef,
                )
                loss.backward()
                index += 1
                done += 1
                if on_batch is not None:
                    on_batch(done, cfg.ppo_epochs * len(batches))
                if epoch == cfg.ppo_epochs - 1:
                    loss_total += loss.item() * mini_tokens / n_tokens
                    kl_total += kl.item()
                    entropy_total += (entropy.detach() * mask).sum().item()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            if not math.isfinite(grad_norm.item()):
                optimizer.zero_grad(set_to_none=True)
                raise TrainingDiverged("non-finite gradient in the GRPO update; lower the lr or check the rewards")
            optimizer.step()
    model.eval()
    return {
        **stats,
        "loss": loss_total,
        "kl": kl_total / n_tokens,
        "entropy": entropy_total / n_tokens,
        "grad_norm": float(grad_norm),
        "skipped_update": False,
    }
