"""The RL phase on TRL's GRPOTrainer (`RLConfig.trainer: trl`), for RL past one process: launched
with `accelerate launch` it runs under DDP, FSDP or DeepSpeed ZeRO-3 (configs/accelerate/), where
`train.rl` (the readable reference) keeps float32 weights, a reference copy and AdamW state in one
process.

Same inputs and outputs as `train.rl.train_rl`: it starts from `cfg.model`, samples only
`cfg.tasks`, writes `rl_metrics.jsonl` (the same keys), `rl_episodes.jsonl`, `checkpoint-N`
(Trainer checkpoints; a rerun resumes from the latest) and `final/`.

How a multi-turn episode reaches TRL: the dataset's prompts are task ids, and TRL's `rollout_func`
hook plays them with our agent loop (`prismrl.rollout.rollout`, the same sampler, history and KV
cache as the reference) against our env pool, `group_size` episodes per task (TRL repeats each
prompt `num_generations` times). Each episode goes back as ONE sequence: the first turn's prompt is
TRL's prompt, everything after it its completion, with `env_mask` 1 on the tokens the policy
generated and 0 on the observations between them, so the loss is taken on the agent's tokens only
(TRL's multi-turn masking). The reward TRL normalises within each group is the episode's mean turn
score, as `train.rl` logs it.

Where TRL's GRPO differs from the reference (docs/SCALING.md lists them with the reasons):
- one advantage per episode, not per turn: the invalid-action penalty (verl-agent subtracts it on
  the invalid turn's row) enters as the episode's mean turn score; group statistics are taken over
  episodes, not over every turn row (verl-agent's compute_mean_std_cross_all_data);
- no GiGPO (its step groups need per-turn advantages): `advantage: gigpo` is refused;
- an episode whose prompt window moved (past `max_prompt_tokens`) is trained on its last segment,
  the turns since the window's last start, which end in the reward (the reference trains every
  segment); `rl_metrics.jsonl` counts them (`cut_episodes`);
- the k3 KL is not clamped to [-10, 10] (verl's low_var_kl is);
- no sampling log-probs are handed back (`logprobs` None): TRL recomputes the old log-probs where
  it needs them; its vLLM paths are not used by this hook.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import gather_object
from torch.utils.tensorboard import SummaryWriter
from transformers import TrainerCallback

from prismrl.errors import ConfigError
from prismrl.fileio import JsonlAppender, atomic_write_json, atomic_write_jsonl, read_jsonl_prefix, replace_dir
from prismrl.rollout import Episode, rollout
from prismrl.train.rl import RLConfig, episode_reward, episode_samples, rollout_sampling, total_steps, turn_scores


def episode_sequence(episode: Episode, eos_id: int) -> tuple[list[int], list[int], list[int], bool]:
    """(prompt ids, completion ids, env mask, cut) of the episode as one sequence: the first turn's
    prompt, then every reply (mask 1) and the observation tokens between them (mask 0). `cut`: the
    prompt window moved, and this is the last segment only. An episode without a reply (an
    environment error at reset) gets one masked EOS: TRL needs a token, the loss gets none."""
    segments = episode_samples(episode, [0.0] * len(episode.turns))
    if not segments:
        return [eos_id], [eos_id], [0], False
    last = segments[-1]
    start = last.generated.index(True)
    return last.ids[:start], last.ids[start:], [int(g) for g in last.generated[start:]], len(segments) > 1


def episode_return(episode: Episode, cfg: RLConfig) -> float | None:
    """The scalar TRL normalises within a group: the mean turn score (the reference's logged
    return); None for an episode that ended in an environment error (TRL then leaves it out of the
    group's statistics and gives it no advantage, as the reference drops it)."""
    if episode.error is not None:
        return None
    scores = turn_scores(episode, cfg.invalid_penalty, cfg.reward)
    return float(np.mean(scores)) if scores else episode_reward(episode, cfg.reward)


def rollout_stats(records: list[dict], ppo_epochs: int) -> dict:
    """A step's rollout statistics, the reference trainer's keys (`train.rl.update_policy`)."""
    returns = [r["return"] for r in records if r["return"] is not None]
    steps = sum(r["steps"] for r in records)
    return {
        "reward": float(np.mean(returns)) if returns else 0.0,
        "env_reward": float(np.mean([r["reward"] for r in records])),
        "success": float(np.mean([r["won"] for r in records])),
        "episode_length": steps / len(records),
        "invalid_rate": sum(r["invalid_actions"] for r in records) / steps if steps else 0.0,
        "errors": sum(r["error"] is not None for r in records),
        "tokens_generated": sum(r["generated_tokens"] for r in records),
        "samples": len(records),
        "cut_episodes": sum(r["cut"] for r in records),
        "prompt_tokens": sum(r["prompt_tokens"] for r in records),
        "update_tokens": ppo_epochs * sum(r["sequence_tokens"] for r in records),
    }


class EpisodeRollouts:
    """TRL's `rollout_func`: plays the prompts' tasks and hands back one sequence per episode. It
    keeps each step's rollout statistics for `MetricsLog` and writes the transcripts."""

    def __init__(self, cfg: RLConfig, tokenizer, pool, episodes_path: Path):
        self.cfg, self.tokenizer, self.pool = cfg, tokenizer, pool
        self.sampling = rollout_sampling(cfg)
        self.episodes_path = episodes_path
        self.last: dict = {}

    def __call__(self, prompts: list[str], trainer) -> dict:
        from trl.models.utils import unwrap_model_for_generation

        started = time.perf_counter()
        step = trainer.state.global_step
        with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator) as model, torch.no_grad():
            was_training = model.training
            model.eval()
            episodes = rollout(
                model,
                self.tokenizer,
                self.pool,
                self.cfg.env,
                list(prompts),
                self.sampling,
                seed=self.cfg.seed * 1_000_003 + step + 1_000 * trainer.accelerator.process_index,
            )
            model.train(was_training)
        sequences = [episode_sequence(e, self.tokenizer.eos_token_id) for e in episodes]
        returns = [episode_return(e, self.cfg) for e in episodes]
        # every process's episodes, so that the transcripts and the statistics cover the whole step
        records = gather_object(
            [
                {"step": step + 1, **e.to_dict(), "return": r, "cut": cut, "sequence_tokens": len(p) + len(c)}
                for e, r, (p, c, _, cut) in zip(episodes, returns, sequences)
            ]
        )
        if trainer.accelerator.is_main_process:
            with JsonlAppender(self.episodes_path) as sink:
                for record in records:
                    sink.write({k: v for k, v in record.items() if k not in ("return", "cut", "sequence_tokens")})
        self.last = rollout_stats(records, self.cfg.ppo_epochs) | {
            "rollout_seconds": time.perf_counter() - started,
            "tasks": sorted({r["task_id"] for r in records}),
        }
        return {
            "prompt_ids": [p for p, _, _, _ in sequences],
            "completion_ids": [c for _, c, _, _ in sequences],
            "env_mask": [m for _, _, m, _ in sequences],
            "logprobs": None,
            "episode_return": returns,
        }


def episode_return_reward(prompts, completions, episode_return, **kwargs) -> list[float | None]:
    """TRL reward function: the return each episode earned in `EpisodeRollouts` (forwarded by TRL
    as the `episode_return` field of the rollout's output)."""
    return list(episode_return)


def trl_config(cfg: RLConfig, world_size: int = 1, progress: bool = True):
    """The GRPOConfig that runs `cfg`'s algorithm: one optimizer step per rollout of
    `tasks_per_step` x `group_size` episodes (ppo_epochs passes), token-mean loss over the batch
    (TRL's `dapo` = verl's token-mean), group-normalised rewards, PPO clip, k3 KL, constant lr."""
    from trl import GRPOConfig

    from prismrl.models import resolve_dtype

    if cfg.advantage != "grpo":
        raise ConfigError(f"the trl trainer runs GRPO only (GiGPO needs per-turn advantages): advantage {cfg.advantage!r}")
    if cfg.backend != "transformers":
        raise ConfigError(
            f"the trl trainer rolls out with the model it trains (backend transformers), not {cfg.backend!r}; "
            "vLLM rollouts go with trainer prismrl"
        )
    if cfg.ppo_mini_batch_size is not None:
        raise ConfigError("the trl trainer takes one optimizer step per rollout: leave ppo_mini_batch_size unset")
    episodes = cfg.tasks_per_step * cfg.group_size
    per_step = cfg.micro_batch_size * world_size
    if episodes % per_step:
        raise ConfigError(
            f"tasks_per_step x group_size ({episodes}) must be a multiple of micro_batch_size x processes ({per_step}) "
            "for the trl trainer (one optimizer step per rollout)"
        )
    on_cuda = (cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    compute = resolve_dtype(cfg.dtype)
    return GRPOConfig(
        output_dir=cfg.out,
        max_steps=total_steps(cfg),
        per_device_train_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=episodes // per_step,
        steps_per_generation=episodes // per_step,
        num_generations=cfg.group_size,
        num_iterations=cfg.ppo_epochs,
        learning_rate=cfg.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=cfg.max_grad_norm,
        beta=cfg.kl_coef,
        epsilon=cfg.clip_eps,
        entropy_coef=cfg.entropy_coef,
        loss_type="dapo",
        scale_rewards="group",
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_completion_length=cfg.max_new_tokens * (cfg.max_turns or 50),
        mask_truncated_completions=False,
        remove_unused_columns=False,
        shuffle_dataset=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=1,
        report_to="none",  # MetricsLog writes rl_metrics.jsonl and tensorboard/ as the reference trainer does
        seed=cfg.seed,
        use_cpu=not on_cuda,
        bf16=on_cuda and compute == torch.bfloat16,
        fp16=on_cuda and compute == torch.float16,
        disable_tqdm=not progress,
    )


class MetricsLog(TrainerCallback):
    """One `rl_metrics.jsonl` line per optimizer step, with the reference trainer's keys: the
    rollout's statistics and TRL's loss, KL, entropy and gradient norm."""

    def __init__(self, rollouts: EpisodeRollouts, out: Path):
        self.rollouts, self.out = rollouts, out
        self.started = time.perf_counter()

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        record = {
            **self.rollouts.last,
            "loss": logs["loss"],
            "kl": logs.get("kl", 0.0),
            "entropy": logs.get("entropy", float("nan")),
            "grad_norm": logs.get("grad_norm", float("nan")),
            "skipped_update": False,
            "step": state.global_step,
            "seconds": time.perf_counter() - self.started,
        }
        with JsonlAppender(self.out / "rl_metrics.jsonl") as sink:
            sink.write(record)
        with SummaryWriter(str(self.out / "tensorboard")) as board:
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
                    board.add_scalar(f"rl/{key}", value, state.global_step)


def train_rl_trl(cfg: RLConfig, progress: bool = True) -> dict:
    """GRPO on TRL's trainer for `total_steps(cfg)` steps, resuming from the latest checkpoint."""
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint
    from trl import GRPOTrainer

    from prismrl.envs.base import agent_env_config
    from prismrl.envs.pool import EnvPool
    from prismrl.launch import launched_rank, launched_world_size
    from prismrl.models import load_model
    from prismrl.train.curve import plot_rl

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is TRL's documented multi-turn hook
    out = Path(cfg.out)
    args = trl_config(cfg, launched_world_size(), progress)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = get_last_checkpoint(str(out)) if out.is_dir() else None
    start_step = json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"] if checkpoint else 0
    if launched_rank() == 0:  # the one writer of the run's files (the others only read the checkpoint)
        atomic_write_json(out / "rl_config.json", asdict(cfg))
        # Metrics and transcripts of steps past the checkpoint were lost with the crash's model state: drop them.
        for name in ("rl_metrics.jsonl", "rl_episodes.jsonl"):
            atomic_write_jsonl(out / name, [m for m in read_jsonl_prefix(out / name) if m["step"] <= start_step])
    # float32 weights, as the reference (AdamW steps of lr 1e-6 vanish in bfloat16 rounding); the
    # Trainer's bf16/fp16 flags autocast the compute on a GPU.
    model, tokenizer, name = load_model(cfg.model, "float32", cfg.device)
    with EnvPool(cfg.env, agent_env_config(cfg.env, cfg.env_config), cfg.n_workers) as pool:
        rollouts = EpisodeRollouts(cfg, tokenizer, pool, out / "rl_episodes.jsonl")
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[episode_return_reward],
            args=args,
            train_dataset=Dataset.from_dict({"prompt": list(cfg.tasks)}),
            processing_class=tokenizer,
            rollout_func=rollouts,
            callbacks=[MetricsLog(rollouts, out)],
        )
        trainer.train(resume_from_checkpoint=checkpoint)
    final = out / "final"
    if not (final / "config.json").exists():
        staging = out / "final.partial"
        trainer.save_model(str(staging))  # every rank takes part (FSDP / ZeRO-3 gather the weights)
        if trainer.is_world_process_zero():
            tokenizer.save_pretrained(staging)
            replace_dir(staging, final)
    metrics = read_jsonl_prefix(out / "rl_metrics.jsonl")
    if trainer.is_world_process_zero() and metrics:
        plot_rl(metrics, out / "rl_curve.png")
    return {**(metrics[-1] if metrics else {}), "start_step": start_step, "final": str(final), "model": name}
