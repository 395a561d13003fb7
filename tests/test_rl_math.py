import pytest
import torch

from prismrl.rollout import Episode, Turn
from prismrl.rollout.history import windowed
from prismrl.train.rl import (
    RLConfig,
    Sample,
    TaskSampler,
    build_samples,
    total_steps,
    episode_samples,
    gigpo_step_advantages,
    group_advantages,
    grpo_loss,
    response_logprobs,
    token_advantages,
)


def _episode(task, reward, invalid=0, observations=("o1",)):
    turns = [Turn([1, 2], [3, 4], obs, "a", valid=i >= invalid) for i, obs in enumerate(observations)]
    turns[-1].reward = reward
    return Episode(task, [], turns=turns, done=True, won=reward == 1.0, reward=reward)


def test_group_advantages_hand_worked():
    # returns 1, 0, 0, 1: mean 0.5, unbiased std √(1/3) (torch.std, as verl) → ±√3/2
    assert group_advantages([1, 0, 0, 1]) == pytest.approx([0.75**0.5, -(0.75**0.5), -(0.75**0.5), 0.75**0.5], rel=1e-5)
    # returns 1, 0, 0: mean 1/3, unbiased std 1/√3 → (2/3)·√3 and −(1/3)·√3
    assert group_advantages([1, 0, 0]) == pytest.approx([2 / 3**0.5, -1 / 3**0.5, -1 / 3**0.5], rel=1e-5)
    assert group_advantages([0.3, 0.3]) == [0.0, 0.0]


def test_invalid_penalty_enters_the_return():
    cfg = RLConfig(invalid_penalty=0.1, reward="score")
    # same env reward 1, but both turns of the second episode were invalid: each of its turns
    # scores 1 − 0.1 (the penalty is per turn, as verl-agent); episode mean 1.0 and 0.9
    episodes = [_episode("a", 1.0, 0, ("o1", "o2")), _episode("a", 1.0, 2, ("o1", "o2"))]
    samples, returns = build_samples(episodes, cfg)
    assert returns == pytest.approx([1.0, 0.9])
    h = 0.75**0.5  # 4 turn rows 1, 1, .9, .9: unbiased std → ±√3/2
    assert [s.advantages[-1] for s in samples] == pytest.approx([h, h, -h, -h], rel=1e-4)


def test_invalid_penalty_is_per_turn():
    """Issue 12: the penalty lands on the turn that made the invalid action (verl-agent), not
    summed over the episode and spread over all its turns. A failed episode with one invalid
    turn: its valid turn scores like a clean failure's turns, its invalid turn lower."""
    cfg = RLConfig(invalid_penalty=0.1)
    messy = _episode("a", 0.0, 1, ("o1", "o2"))  # turn 0 invalid, turn 1 valid
    clean = _episode("a", 0.0, 0, ("o1", "o2"))
    winner = _episode("a", 1.0, 0, ("o1", "o2"))
    samples, _ = build_samples([messy, clean, winner], cfg)
    per_turn = [a for s in samples for a, g in zip(s.advantages, s.generated) if g][::2]  # 2 tokens a turn
    messy_invalid, messy_valid, clean_0, clean_1, win_0, _ = per_turn
    assert messy_valid == pytest.approx(clean_0) and clean_0 == pytest.approx(clean_1)
    assert messy_invalid < messy_valid < win_0


@pytest.mark.parametrize("cross_all_rows, won, lost", [(True, 1.5, -0.5), (False, 0.5**0.5, -(0.5**0.5))])
def test_group_statistics_over_turn_rows_or_once_per_episode(cross_all_rows, won, lost):
    """A won 1-turn episode (10) and a lost 3-turn one (0, 0, 0). Over all rows (verl-agent's
    default): mean 2.5, unbiased std √((7.5² + 3·2.5²)/3) = 5 → 1.5 and −0.5. Once per episode:
    mean 5, std √50 → ±1/√2."""
    episodes = [_episode("a", 1.0), _episode("a", 0.0, 0, ("o1", "o2", "o3"))]
    samples, _ = build_samples(episodes, RLConfig(compute_mean_std_cross_all_data=cross_all_rows))
    per_turn = [a for s in samples for a, g in zip(s.advantages, s.generated) if g][::2]  # 2 tokens a turn
    assert per_turn == pytest.approx([won, lost, lost, lost], rel=1e-5)


def test_errored_episodes_leave_the_group_and_the_loss():
    errored = _episode("a", 0.0)
    errored.error = "TimeoutError: env worker"
    episodes = [_episode("a", 1.0), _episode("a", 0.0), errored]
    samples, returns = build_samples(episodes, RLConfig())
    assert len(samples) == 2 and returns == pytest.approx([10.0, 0.0])  # 10 × won
    assert [s.advantages[-1] for s in samples] == pytest.approx([0.5**0.5, -(0.5**0.5)], rel=1e-5)


def test_groups_are_per_task():
    episodes = [_episode("a", 1.0), _episode("a", 0.0), _episode("b", 0.0), _episode("b", 0.0)]
    samples, _ = build_samples(episodes, RLConfig())
    r = 0.5**0.5  # rows 1, 0: unbiased std √½
    assert [s.advantages[-1] for s in samples] == pytest.approx([r, -r, 0, 0], rel=1e-5)


def test_gigpo_step_groups_share_anchor_observations():
    # Both episodes start from "s0"; episode 1 wins at its second step, episode 2 fails.
    # Discounted returns (γ=0.5): ep1 [0.5, 1.0], ep2 [0, 0]; anchor s0 holds 0.5 and 0 → ±1;
    # the later observations differ, so those step groups have one member and get 0.
    win = _episode("a", 1.0, 0, ("s0", "s1"))
    lose = _episode("a", 0.0, 0, ("s0", "s2"))
    advantages = gigpo_step_advantages([win, lose], invalid_penalty=0.0, gamma=0.5)
    r = 0.5**0.5  # (0.5 − 0.25) / unbiased std of (0.5, 0) = 0.25 / (0.5/√2)
    assert advantages[0] == pytest.approx([r, 0.0], rel=1e-5) and advantages[1] == pytest.approx([-r, 0.0], rel=1e-5)
    # mean_norm (verl-agent's other mode): the mean is removed, the scale kept
    advantages = gigpo_step_advantages([win, lose], invalid_penalty=0.0, gamma=0.5, mode="mean_norm")
    assert advantages[0] == pytest.approx([0.25, 0.0]) and advantages[1] == pytest.approx([-0.25, 0.0])


def test_loss_touches_response_tokens_only():
    from prismrl.models import tiny_model

    model = tiny_model(0, vocab_size=64)
    samples = [
        Sample([5, 6, 7, 8, 9, 10, 2], [False] * 4 + [True] * 3, [0.0] * 4 + [1.0] * 3),
        Sample([5, 6, 11, 2], [False, False, True, True], [0.0, 0.0, -1.0, -1.0]),
    ]
    logprobs, mask, _ = response_logprobs(model, samples, temperature=1.0, pad_id=0)
    assert mask.sum().item() == 5
    assert mask[0].nonzero().flatten().tolist() == [3, 4, 5] and mask[1].nonzero().flatten().tolist() == [1, 2]
    # The loss gradient w.r.t. the log-probs vanishes off the response tokens.
    leaf = logprobs.detach().requires_grad_(True)
    advantages = token_advantages(samples, 7, leaf.device)
    assert advantages[0, 3:6].tolist() == [1.0] * 3 and advantages[1, 1:3].tolist() == [-1.0] * 2
    loss, _ = grpo_loss(leaf, leaf.detach(), None, advantages, mask, 0.2, 0.0, n_tokens=5)
    loss.backward()
    assert torch.all(leaf.grad[~mask] == 0) and torch.all(leaf.grad[mask] != 0)


def test_a_padded_batch_without_its_mask_gives_each_sample_its_own_logprobs_and_gradients():
    from prismrl.models import tiny_model

    model = tiny_model(0, vocab_size=64)
    samples = [
        Sample([5, 6, 7, 8, 9, 10, 2], [False] * 4 + [True] * 3, [1.0] * 7),
        Sample([5, 6, 11, 2], [False, False, True, True], [1.0] * 4),
    ]
    logprobs, mask, _ = response_logprobs(model, samples, temperature=0.8, pad_id=0)
    logprobs[mask].sum().backward()
    together = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    for row, sample in enumerate(samples):
        alone, alone_mask, _ = response_logprobs(model, [sample], temperature=0.8, pad_id=0)
        torch.testing.assert_close(alone[alone_mask], logprobs[row][mask[row]], rtol=1e-5, atol=1e-6)
        alone[alone_mask].sum().backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, together[name], rtol=1e-4, atol=1e-6)


def test_ppo_clip_and_k3_kl():
    logprobs = torch.tensor([[0.0]])
    mask = torch.tensor([[True]])
    # ratio e^0.5 ≈ 1.65 with A=+1 is clipped at 1.2 → loss −1.2
    loss, _ = grpo_loss(logprobs, torch.tensor([[-0.5]]), None, torch.tensor([[1.0]]), mask, 0.2, 0.0, 1)
    assert loss.item() == pytest.approx(-1.2)
    # k3 KL with ref−logp = 1: e − 1 − 1
    loss, kl = grpo_loss(logprobs, logprobs, torch.tensor([[1.0]]), torch.tensor([[0.0]]), mask, 0.2, 0.5, 1)
    assert kl.item() == pytest.approx(torch.e - 2) and loss.item() == pytest.approx(0.5 * (torch.e - 2))


def test_k3_kl_is_clamped_like_verl_low_var_kl():
    logprobs, mask = torch.tensor([[0.0]]), torch.tensor([[True]])
    # ref − logp = 20: e^20 − 21 is huge; verl clamps the k3 estimate to 10
    _, kl = grpo_loss(logprobs, logprobs, torch.tensor([[20.0]]), torch.tensor([[0.0]]), mask, 0.2, 1.0, 1)
    assert kl.item() == pytest.approx(10.0)


def test_task_sampler_stays_inside_its_list():
    allowed = [f"t{i}" for i in range(10)]
    sampler = TaskSampler(allowed, per_step=4, seed=1)
    seen = [t for step in range(50) for t in sampler.tasks_for_step(step)]
    assert set(seen) == set(allowed)
    assert sampler.tasks_for_step(7) == TaskSampler(list(reversed(allowed)), 4, 1).tasks_for_step(7)
    assert len(set(sampler.tasks_for_step(0))) == 4


def test_history_window_keeps_system_and_task():
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "task"}]
    for i in range(5):
        messages += [{"role": "assistant", "content": f"a{i}"}, {"role": "user", "content": f"o{i}"}]
    kept = windowed(messages, 2)
    assert [m["content"] for m in kept] == ["s", "task", "a3", "o3", "a4", "o4"]
    assert windowed(messages, None) == messages


def test_turns_that_extend_the_history_share_one_sequence():
    first = Turn([1, 2], [3, 4], "o1", "a", True)
    second = Turn([1, 2, 3, 4, 5, 6], [7, 8], "o2", "b", True)  # history + observation 5 6
    windowed_third = Turn([1, 2, 9], [10], "o3", "c", True)  # the window dropped turns: new sequence
    samples = episode_samples(Episode("t", [], turns=[first, second, windowed_third]), [0.5, 0.25, -1.0])
    assert [s.ids for s in samples] == [[1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 9, 10]]
    assert samples[0].generated == [False, False, True, True, False, False, True, True]
    assert samples[0].advantages == [0, 0, 0.5, 0.5, 0, 0, 0.25, 0.25] and samples[1].advantages == [0, 0, 0, -1.0]


def _loss_and_grads(model, reference, samples, n_tokens):
    model.zero_grad(set_to_none=True)
    logprobs, mask, entropy = response_logprobs(model, samples, temperature=0.8, pad_id=0)
    with torch.no_grad():
        ref = response_logprobs(reference, samples, temperature=0.8, pad_id=0)[0]
    advantages = token_advantages(samples, logprobs.shape[1] + 1, logprobs.device)
    loss, _ = grpo_loss(
        logprobs,
        logprobs.detach(),
        ref,
        advantages,
        mask,
        clip_eps=0.2,
        kl_coef=0.05,
        n_tokens=n_tokens,
        entropy=entropy,
        entropy_coef=0.01,
    )
    loss.backward()
    return logprobs[mask].detach(), loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_one_sequence_per_episode_gives_the_per_turn_update():
    """An episode whose every prompt extends the previous prompt + reply, trained as ONE sequence,
    gives the per-token log-probs, loss and gradients of training each turn as its own sequence
    (causal attention: a turn's tokens see the same prefix either way)."""
    from prismrl.models import tiny_model

    model, reference = tiny_model(1, vocab_size=64), tiny_model(2, vocab_size=64)
    system, obs1, reply1, obs2, reply2, obs3, reply3 = [5, 6, 7], [8, 9], [10, 11, 2], [12, 13, 14], [15, 2], [16], [17, 18, 19, 2]
    turns = [
        Turn(system + obs1, reply1, "o1", "a", True),
        Turn(system + obs1 + reply1 + obs2, reply2, "o2", "b", True),
        Turn(system + obs1 + reply1 + obs2 + reply2 + obs3, reply3, "o3", "c", False),
    ]
    advantages = [0.7, -0.3, 1.1]
    [whole] = episode_samples(Episode("t", [], turns=turns), advantages)
    per_turn = [s for turn, a in zip(turns, advantages) for s in episode_samples(Episode("t", [], turns=[turn]), [a])]
    assert len(per_turn) == 3 and whole.ids == turns[-1].prompt_ids + reply3
    n_tokens = whole.n_generated
    assert n_tokens == sum(s.n_generated for s in per_turn) == 9
    whole_logprobs, whole_loss, whole_grads = _loss_and_grads(model, reference, [whole], n_tokens)
    turn_logprobs, turn_loss, turn_grads = _loss_and_grads(model, reference, per_turn, n_tokens)
    torch.testing.assert_close(whole_logprobs, turn_logprobs, rtol=1e-5, atol=1e-6)
    assert whole_loss == pytest.approx(turn_loss, rel=1e-5)
    for name, grad in turn_grads.items():
        torch.testing.assert_close(whole_grads[name], grad, rtol=1e-4, atol=1e-7)


def test_logprobs_on_generated_positions_equal_the_full_vocabulary_pass():
    """Logits only where a generated token is predicted give the same log-probs and entropy as
    the plain forward over every position (and zero elsewhere)."""
    from prismrl.models import tiny_model

    model = tiny_model(1, vocab_size=64)
    samples = [
        Sample([5, 6, 7, 8, 9, 10, 2], [False] * 4 + [True] * 3, [1.0] * 7),
        Sample([5, 6, 11, 12, 13, 2], [False, False, True, False, True, True], [1.0] * 6),
    ]
    logprobs, mask, entropy = response_logprobs(model, samples, temperature=0.7, pad_id=0)
    width = 7
    ids = torch.zeros((2, width), dtype=torch.long)
    attention = torch.zeros_like(ids)
    for row, sample in enumerate(samples):
        ids[row, : len(sample.ids)] = torch.tensor(sample.ids)
        attention[row, : len(sample.ids)] = 1
    with torch.no_grad():
        full = torch.log_softmax(model(input_ids=ids, attention_mask=attention).logits[:, :-1] / 0.7, dim=-1)
    expected = full.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(logprobs[mask], expected[mask], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(entropy[mask], -(full.exp() * full).sum(-1)[mask], rtol=1e-5, atol=1e-6)
    assert torch.all(logprobs[~mask] == 0) and torch.all(entropy[~mask] == 0)
    logprobs.sum().backward()  # differentiable through the gathered positions
    assert model.lm_head.weight.grad is not None


def test_rl_budget_is_epochs_over_the_rl_tasks():
    tasks = [f"t{i}" for i in range(64)]
    full = total_steps(RLConfig(tasks=tasks, tasks_per_step=16, epochs=2.0))
    half = total_steps(RLConfig(tasks=tasks[:32], tasks_per_step=16, epochs=2.0))
    assert (full, half) == (8, 4)  # a half-sized RL task set gets half the steps
    assert total_steps(RLConfig(tasks=tasks, tasks_per_step=16, epochs=0.1)) == 1  # ceil
    assert total_steps(RLConfig(tasks=tasks, tasks_per_step=16, epochs=2.0, steps=3)) == 3  # explicit override wins
    # fewer tasks than tasks_per_step: the sampler takes each once a step, so an epoch is a step
    assert total_steps(RLConfig(tasks=tasks[:4], tasks_per_step=16, epochs=3.0)) == 3
    sampler = TaskSampler(tasks[:32], 16, seed=0)  # two steps of an epoch cover the set once
    assert sorted(sampler.tasks_for_step(0) + sampler.tasks_for_step(1)) == sorted(tasks[:32])


def test_training_reward_is_ten_times_success_by_default():
    """verl-agent trains on 10 × won; the graded score is only logged. Two failed episodes with
    different partial scores are the same to the default reward, and differ under `score`."""
    partial = [_episode("a", 0.8), _episode("a", 0.2), _episode("a", 1.0)]
    _, returns = build_samples(partial, RLConfig())
    assert returns == pytest.approx([0.0, 0.0, 10.0])
    _, returns = build_samples(partial, RLConfig(reward="score"))
    assert returns == pytest.approx([0.8, 0.2, 1.0])


def test_entropy_bonus_enters_the_loss():
    logprobs, mask = torch.tensor([[0.0]]), torch.tensor([[True]])
    loss, _ = grpo_loss(
        logprobs, logprobs, None, torch.tensor([[0.0]]), mask, 0.2, 0.0, 1, entropy=torch.tensor([[2.0]]), entropy_coef=0.001
    )
    assert loss.item() == pytest.approx(-0.002)
    assert RLConfig().entropy_coef == 0.001  # verl-agent's recipes


def test_a_step_without_reward_signal_still_steps_on_the_kl_and_entropy_terms():
    """All groups scored alike: every advantage is 0, yet verl's actor takes its optimizer step on
    the KL loss and the entropy bonus; the update is not skipped."""
    from prismrl.models import tiny_model
    from prismrl.train.rl import update_policy

    model = tiny_model(0, vocab_size=64)
    before = [p.detach().clone() for p in model.parameters()]
    alike = [Episode("a", [], turns=[Turn([5, 6], [7 + i, 8], "o", "a", True)], done=True, won=True, reward=1.0) for i in range(2)]
    assert all(a == 0.0 for s in build_samples(alike, RLConfig())[0] for a in s.advantages)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    metrics = update_policy(model, None, optimizer, alike, RLConfig(kl_coef=0.0, entropy_coef=0.01, micro_batch_size=1), pad_id=0)
    assert not metrics["skipped_update"] and metrics["entropy"] > 0
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_mini_batches_take_several_optimizer_steps_from_one_rollout():
    """ppo_mini_batch_size: one optimizer step per mini-batch, the old log-probs taken once
    before the first, so later mini-batches see ratio ≠ 1 (the clip can act)."""
    from prismrl.models import tiny_model
    from prismrl.train.rl import update_policy

    model = tiny_model(0, vocab_size=64)
    win = Episode("a", [], turns=[Turn([5, 6], [7, 8], "o", "a", True)], done=True, won=True, reward=1.0)
    lose = Episode("a", [], turns=[Turn([5, 6], [9, 10], "o", "a", True)], done=True, won=False, reward=0.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    steps = []
    optimizer.step = (lambda original: lambda *a, **k: (steps.append(1), original(*a, **k))[1])(optimizer.step)
    cfg = RLConfig(ppo_mini_batch_size=1, ppo_epochs=2, micro_batch_size=1, kl_coef=0.0, entropy_coef=0.0)
    metrics = update_policy(model, None, optimizer, [win, lose], cfg, pad_id=0)
    assert len(steps) == 4 and not metrics["skipped_update"]
