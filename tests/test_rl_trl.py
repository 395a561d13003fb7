"""The RL phase on TRL's GRPOTrainer (`RLConfig(trainer="trl")`): same inputs and outputs as the
reference trainer, multi-turn episodes as one masked sequence each."""

import json
from pathlib import Path

import pytest
import torch
from test_rl import TASKS, _config, _success, undecided_policy  # noqa: F401  (a fixture)

from prismrl.errors import ConfigError
from prismrl.rollout import Episode
from prismrl.rollout.agent import Turn
from prismrl.train import run_rl
from prismrl.train.rl import RLConfig
from prismrl.train.rl_trl import episode_return, episode_sequence, trl_config


def _turn(prompt, reply, valid=True):
    return Turn(prompt, reply, "obs", "act", valid)


def test_an_episode_is_one_sequence_with_only_the_agents_tokens_unmasked():
    first = [1, 2, 3]
    episode = Episode("t", [], [_turn(first, [10, 11]), _turn(first + [10, 11, 4, 5], [12])])
    prompt, completion, mask, cut = episode_sequence(episode, eos_id=0)
    assert prompt == first and completion == [10, 11, 4, 5, 12] and mask == [1, 1, 0, 0, 1] and not cut


def test_an_episode_whose_window_moved_is_trained_on_its_last_segment():
    episode = Episode("t", [], [_turn([1, 2], [10]), _turn([1, 2, 10, 3], [11]), _turn([1, 7, 8], [12, 13])])
    assert episode_sequence(episode, eos_id=0) == ([1, 7, 8], [12, 13], [1, 1], True)


def test_an_episode_without_a_reply_carries_no_loss():
    assert episode_sequence(Episode("t", [], [], error="engine died"), eos_id=0) == ([0], [0], [0], False)


def test_the_return_is_the_mean_turn_score_and_an_env_error_has_none():
    cfg = RLConfig(reward="success", invalid_penalty=0.1)
    won = Episode("t", [], [_turn([1], [2], valid=False), _turn([1], [2])], won=True)
    assert episode_return(won, cfg) == pytest.approx((9.9 + 10.0) / 2)
    assert episode_return(Episode("t", [], [], error="boom"), cfg) is None


def test_the_trl_config_runs_the_reference_algorithm(tmp_path):
    cfg = RLConfig(
        out=str(tmp_path),
        tasks=TASKS,
        tasks_per_step=4,
        group_size=8,
        micro_batch_size=2,
        kl_coef=0.02,
        clip_eps=0.2,
        lr=1e-6,
        ppo_epochs=1,
        steps=5,
        device="cpu",
    )
    args = trl_config(cfg)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.steps_per_generation) == (2, 16, 16)
    assert (args.num_generations, args.max_steps, args.beta, args.epsilon, args.learning_rate) == (8, 5, 0.02, 0.2, 1e-6)
    assert (args.loss_type, args.scale_rewards, args.lr_scheduler_type) == ("dapo", "group", "constant")
    with pytest.raises(ConfigError, match="GRPO only"):
        trl_config(RLConfig(out=str(tmp_path), advantage="gigpo", device="cpu"))
    with pytest.raises(ConfigError, match="multiple"):
        trl_config(RLConfig(out=str(tmp_path), tasks_per_step=3, group_size=3, micro_batch_size=2, device="cpu"))


def test_trl_grpo_learns_the_known_best_action(undecided_policy, tmp_path):  # noqa: F811
    before = _success(undecided_policy, tmp_path, "eval_before")
    summary = run_rl(_config(undecided_policy, tmp_path / "rl", trainer="trl", device="cpu"), progress=False)
    metrics = [json.loads(line) for line in (tmp_path / "rl" / "rl_metrics.jsonl").read_text().splitlines()]
    rewards = [m["reward"] for m in metrics]
    after = _success(summary["final"], tmp_path, "eval_after")
    assert [m["step"] for m in metrics] == list(range(1, 17))
    assert 0.25 <= before <= 0.75, f"the start policy should be undecided, success {before}"
    assert sum(rewards[-4:]) / 4 >= sum(rewards[:2]) / 2 + 1.0, rewards  # reward is 10 x won
    assert after >= before + 0.25 and after >= 0.8, (before, after)
    steps = {json.loads(line)["step"] for line in (tmp_path / "rl" / "rl_episodes.jsonl").read_text().splitlines()}
    assert steps == set(range(1, 17)) and (tmp_path / "rl" / "rl_curve.png").stat().st_size > 0


PAPER_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "paper").glob("*.yaml"))


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=lambda p: p.name)
def test_paper_configs_build_every_phase_and_launch_config_without_the_model(path, tmp_path):
    """Every phase's config of a paper run, TRL's GRPOConfig for 8 processes and the accelerate
    configs its header names, built without loading an 8B model."""
    import re

    from accelerate.commands.config.config_args import load_config_from_file

    from prismrl.pipeline import phases
    from prismrl.pipeline.phase import Run
    from prismrl.pipeline.run_config import load_run_config

    job = Run(load_run_config(path), tmp_path)
    assert phases.sft_config(job, tmp_path / "sft.jsonl").max_length == job.cfg.probe["max_length"]
    rl = phases.rl_config(job, str(tmp_path / "sft" / "final"), ["0", "1"])
    assert rl.trainer == "trl" and rl.history_window == job.cfg.agent["history_window"]
    args = trl_config(rl, world_size=8)
    assert args.num_generations == 8 and args.per_device_train_batch_size * 8 * args.gradient_accumulation_steps == 16 * 8
    assert phases.eval_config(job, "m", "test").max_prompt_tokens == rl.max_prompt_tokens
    named = set(re.findall(r"configs/accelerate/([\w.-]+\.yaml)", path.read_text()))
    assert {"fsdp.yaml", "deepspeed-zero3.yaml"} <= named
    for name in named:
        assert load_config_from_file(str(path.parents[1] / "accelerate" / name)).num_processes >= 8


FIXED_EPISODES = '''
"""Runs the trl trainer with episodes fixed by (task, occurrence in the group), so that one
process and two processes train on the same episodes; argv: model folder, out folder."""
import random
import sys

from prismrl.rollout import Episode
from prismrl.rollout.agent import Turn
from prismrl.train import rl_trl
from prismrl.train import run_rl
from prismrl.train.rl import RLConfig


def fixed_rollout(model, tokenizer, pool, env, task_ids, sampling, seed=None, engine=None):
    seen, episodes = {}, []
    for task in task_ids:
        k = seen[task] = seen.get(task, -1) + 1
        rng = random.Random(f"{task}-{k}")
        prompt = [rng.randrange(5, 60) for _ in range(6)]
        first, second = [rng.randrange(5, 60) for _ in range(4)], [rng.randrange(5, 60) for _ in range(3)]
        turns = [Turn(prompt, first, "o", "a", True), Turn(prompt + first + [7, 8], second, "o", "a", True)]
        episodes.append(Episode(task, [], turns, done=True, won=k % 2 == 0))
    return episodes


rl_trl.rollout = fixed_rollout
run_rl(RLConfig(model=sys.argv[1], env="bandit", tasks=[f"bandit-{i}" for i in range(4)], out=sys.argv[2], steps=2,
                  tasks_per_step=4, group_size=2, micro_batch_size=1, lr=1e-3, kl_coef=0.0, entropy_coef=0.0,
                  save_steps=100, trainer="trl", device="cpu", seed=3), progress=False)
'''


def test_two_processes_give_the_update_of_one_with_the_same_global_batch(undecided_policy, tmp_path):  # noqa: F811
    """`torchrun --nproc_per_node 2` (DDP on gloo) against one process: with the same episodes (fixed
    by task and place in the group) the two-process run trains the same weights (tolerance 1e-5:
    the gradients are summed in another order)."""
    import os
    import subprocess
    import sys

    from safetensors.torch import load_file

    script = tmp_path / "fixed_episodes.py"
    script.write_text(FIXED_EPISODES)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    for name, launcher in (("one", []), ("two", ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"])):
        run = subprocess.run(
            [sys.executable, *launcher, str(script), undecided_policy, str(tmp_path / name)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    one, two = (load_file(tmp_path / name / "final" / "model.safetensors") for name in ("one", "two"))
    start = load_file(Path(undecided_policy) / "model.safetensors")
    assert any(not torch.equal(one[k], start[k]) for k in one), "the update changed nothing"
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-5, atol=1e-5, msg=key)
    metrics = [json.loads(line) for line in (tmp_path / "two" / "rl_metrics.jsonl").read_text().splitlines()]
    assert [m["samples"] for m in metrics] == [8, 8]  # both processes' episodes, written once
