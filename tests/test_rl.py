"""GRPO end to end on the two-door bandit, whose best action is known ("open left")."""

import json

import pytest
import torch

from prismrl.data.format import encode
from prismrl.data.schema import Trajectory
from prismrl.envs import make
from prismrl.envs.bandit.prompt import SYSTEM_PROMPT
from prismrl.evaluate import EvalConfig, evaluate
from prismrl.models import load_model
from prismrl.prism.probe import sft_loss
from prismrl.train.rl import RLConfig, train_rl

TASKS = [f"bandit-{i}" for i in range(8)]


@pytest.fixture(scope="module")
def undecided_policy(tmp_path_factory):
    """A tiny model taught the action format with both doors equally often, so it opens each
    about half the time: RL has to find the treasure from rewards alone."""
    env = make("bandit")
    model, tokenizer, _ = load_model("tiny:0", device="cpu")
    encoded = []
    for task in TASKS:
        observation, _ = env.reset(task)
        for door in ("left", "right"):
            messages = [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": observation},
                {"role": "assistant", "content": f"Action: open {door}"},
            ]
            encoded.append(encode(Trajectory(id=f"{task}-{door}", task_id=task, messages=messages), tokenizer))
    width = max(len(e.input_ids) for e in encoded)
    ids = torch.tensor([e.input_ids + [tokenizer.pad_token_id] * (width - len(e.input_ids)) for e in encoded])
    labels = torch.tensor([e.labels + [-100] * (width - len(e.labels)) for e in encoded])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    for _ in range(60):
        loss = sft_loss(model(input_ids=ids).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    folder = tmp_path_factory.mktemp("bandit") / "sft"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def _config(model, out, **overrides):
    options = dict(
        model=model,
        env="bandit",
        tasks=TASKS,
        out=str(out),
        steps=16,
        tasks_per_step=4,
        group_size=8,
        lr=2e-3,
        kl_coef=0.0,
        max_new_tokens=24,
        max_turns=1,
        save_steps=8,
        seed=1,
    )
    return RLConfig(**{**options, **overrides})


def _success(model_folder, tmp_path, name):
    results = evaluate(
        EvalConfig(
            model=model_folder,
            env="bandit",
            split="test",
            episodes=32,
            temperature=1.0,
            max_new_tokens=24,
            out=str(tmp_path / name),
            device="cpu",
        ),
        progress=False,
    )
    return results["success"]


def test_grpo_learns_the_known_best_action(undecided_policy, tmp_path):
    before = _success(undecided_policy, tmp_path, "eval_before")
    summary = train_rl(_config(undecided_policy, tmp_path / "rl"), progress=False)
    rewards = [json.loads(line)["reward"] for line in (tmp_path / "rl" / "rl_metrics.jsonl").read_text().splitlines()]
    after = _success(summary["final"], tmp_path, "eval_after")
    assert 0.25 <= before <= 0.75, f"the start policy should be undecided, success {before}"
    assert sum(rewards[-4:]) / 4 >= sum(rewards[:2]) / 2 + 0.25, rewards
    assert after >= before + 0.25 and after >= 0.8, (before, after)
    episodes = [json.loads(line) for line in (tmp_path / "eval_after" / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 32 and episodes[0]["messages"][-1]["role"] == "assistant"
    assert (tmp_path / "rl" / "rl_curve.png").stat().st_size > 0


def test_the_rl_curve_splits_each_step_into_rollout_and_update():
    from prismrl.train.curve import rl_curve

    metrics = [
        {"step": 1, "reward": 0.2, "success": 0.25, "seconds": 100.0, "rollout_seconds": 40.0},
        {"step": 2, "reward": 0.5, "success": 0.5, "seconds": 90.0, "rollout_seconds": 30.0},
    ]
    curve = rl_curve(metrics)
    assert curve["reward"] == [0.2, 0.5] and curve["update_seconds"] == [60.0, 60.0] and curve["step"] == [1, 2]


def test_a_training_reward_of_10_x_won_stays_in_the_picture(monkeypatch, tmp_path):
    """`reward: success` trains on 10 x won: it gets its own axis, not the 0-1 one (where session
    10's curve lost it)."""
    import prismrl.train.curve as curve

    drawn = []
    monkeypatch.setattr(curve, "atomic_savefig", lambda fig, path: drawn.append(fig))
    metrics = [
        {"step": 1, "reward": 2.5, "env_reward": 0.6, "success": 0.25, "seconds": 100.0, "rollout_seconds": 40.0},
        {"step": 2, "reward": 6.25, "env_reward": 0.8, "success": 0.62, "seconds": 90.0, "rollout_seconds": 30.0},
    ]
    curve.plot_rl(metrics, tmp_path / "curve.png")
    learning, cost, trained = drawn[0].axes
    low, high = trained.get_ylim()
    assert low <= 2.5 and high >= 6.25 and learning.get_ylim() == (-0.05, 1.05)


def test_the_update_reports_every_micro_batch(undecided_policy, tmp_path, monkeypatch):
    from prismrl.train import rl

    seen, update_policy = [], rl.update_policy

    def recording(*args, on_batch, **kwargs):
        return update_policy(*args, on_batch=lambda done, total: (seen.append((done, total)), on_batch(done, total)), **kwargs)

    monkeypatch.setattr(rl, "update_policy", recording)
    train_rl(_config(undecided_policy, tmp_path / "rl", steps=1), progress=True)
    total = seen[-1][1]
    assert total > 1 and seen == [(done, total) for done in range(1, total + 1)]


def test_rollouts_sample_with_the_configured_top_p(undecided_policy, tmp_path, monkeypatch):
    from prismrl.train import rl

    class Stop(Exception):
        pass

    def recording(model, tokenizer, pool, env, task_ids, sampling, **kwargs):
        raise Stop(sampling)

    monkeypatch.setattr(rl, "rollout", recording)
    with pytest.raises(Stop) as stopped:
        train_rl(_config(undecided_policy, tmp_path / "rl", steps=1, top_p=0.9), progress=False)
    assert stopped.value.args[0].top_p == 0.9


def test_sampler_only_uses_the_given_tasks(undecided_policy, tmp_path):
    allowed = TASKS[:3]
    train_rl(_config(undecided_policy, tmp_path / "rl", tasks=allowed, steps=3, tasks_per_step=2, group_size=2), progress=False)
    used = {t for line in (tmp_path / "rl" / "rl_metrics.jsonl").read_text().splitlines() for t in json.loads(line)["tasks"]}
    assert used and used <= set(allowed)


def test_resume_gives_the_uninterrupted_result(undecided_policy, tmp_path):
    clean = train_rl(_config(undecided_policy, tmp_path / "clean", steps=4, save_steps=2), progress=False)
    train_rl(_config(undecided_policy, tmp_path / "resumed", steps=2, save_steps=2), progress=False)
    # A crash after step 2: the final folder of the short run is not a finished 4-step run.
    import shutil

    shutil.rmtree(tmp_path / "resumed" / "final")
    resumed = train_rl(_config(undecided_policy, tmp_path / "resumed", steps=4, save_steps=2), progress=False)
    assert resumed["start_step"] == 2
    a = load_model(clean["final"], device="cpu")[0].state_dict()
    b = load_model(resumed["final"], device="cpu")[0].state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    rewards = lambda run: [json.loads(line)["reward"] for line in (tmp_path / run / "rl_metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert rewards("clean") == rewards("resumed")
    transcripts = lambda run: [json.loads(line) for line in (tmp_path / run / "rl_episodes.jsonl").read_text().splitlines()]  # noqa: E731
    assert [e["step"] for e in transcripts("clean")] == [step for step in (1, 2, 3, 4) for _ in range(4 * 8)]
    assert transcripts("clean") == transcripts("resumed")
    assert transcripts("clean")[0]["messages"][-1]["role"] == "assistant"


def test_only_the_last_checkpoints_are_kept(undecided_policy, tmp_path):
    train_rl(_config(undecided_policy, tmp_path / "rl", steps=4, save_steps=1, save_total_limit=2), progress=False)
    assert sorted(p.name for p in (tmp_path / "rl").glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-4"]
    with pytest.raises(ValueError, match="save_total_limit must be >= 1"):
        train_rl(_config(undecided_policy, tmp_path / "rl", save_total_limit=0), progress=False)


def test_evaluation_is_deterministic_and_resumes(undecided_policy, tmp_path):
    config = dict(
        model=undecided_policy,
        env="bandit",
        split="test",
        episodes=12,
        batch_episodes=4,
        temperature=1.0,
        max_new_tokens=24,
        device="cpu",
        seed=5,
    )
    clean = evaluate(EvalConfig(**config, out=str(tmp_path / "clean")), progress=False)
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    lines = (tmp_path / "clean" / "episodes.jsonl").read_text().splitlines()
    # A crash in the middle of the second batch: one whole batch and half of the next on disk.
    (interrupted / "episodes.jsonl").write_text("\n".join(lines[:6]) + "\n")
    resumed = evaluate(EvalConfig(**config, out=str(interrupted)), progress=False)
    assert (interrupted / "episodes.jsonl").read_text().splitlines() == lines
    assert {k: v for k, v in resumed.items() if k not in ("seconds", "config")} == {
        k: v for k, v in clean.items() if k not in ("seconds", "config")
    }
