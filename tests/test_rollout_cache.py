"""Multi-turn rollouts with a reused KV cache give what re-encoding the history gives."""

import pytest
import torch

import prismrl.rollout.agent as agent
from prismrl.rollout import SamplingConfig, rollout
from prismrl.envs.pool import EnvPool, StepOutcome
from prismrl.rollout.history import prompt_tokens, render, windowed
import prismrl.rollout.kv_cache as kv_cache
from prismrl.rollout.kv_cache import EpisodeCaches, split_by_feed
from prismrl.rollout.sampling import sample_replies


class TalkPool:
    """A multi-turn env in the EnvPool interface: task `talk-<n>` ends after n steps (won if the
    last action was valid); each observation quotes the action, so histories differ per episode.
    `talk-err` fails at reset."""

    def reset(self, task_ids):
        self.tasks, self.steps = list(task_ids), [0] * len(task_ids)
        starts = []
        for task in task_ids:
            if task == "talk-err":
                starts.append(("", {"error": "RuntimeError: no such room", "won": False}))
            else:
                starts.append((f"You are in room {task}. Say something.", {"task_type": "talk"}))
        return starts

    def step(self, actions):
        outcomes = {}
        for slot, action in actions.items():
            self.steps[slot] += 1
            done = self.steps[slot] >= int(self.tasks[slot].split("-")[1])
            observation = f"Step {self.steps[slot]} of {self.tasks[slot]}: you said {action[:30]!r}."
            outcomes[slot] = StepOutcome(observation, 1.0 if done else 0.0, done, {"won": done})
        return outcomes


def _config(**overrides):
    options = dict(temperature=0.0, max_new_tokens=12, max_turns=8, history_window=None, max_prompt_tokens=100_000)
    return SamplingConfig(**{**options, **overrides})


def _recorder(monkeypatch, module, name):
    """The instances of `module.name` that rollout creates, for their counters."""
    found = []

    class Recorded(getattr(module, name)):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            found.append(self)

    monkeypatch.setattr(module, name, Recorded)
    return found


@pytest.fixture
def recorded(monkeypatch):
    return _recorder(monkeypatch, agent, "EpisodeCaches")


@pytest.fixture
def histories(monkeypatch):
    return _recorder(monkeypatch, agent, "HistoryPrompts")


def _greedy_under_teacher_forcing(model, prompt, response):
    """What a fresh forward pass over prompt + response predicts at each response position."""
    ids = torch.tensor([prompt + response])
    logits = model(input_ids=ids, use_cache=False).logits[0, len(prompt) - 1 : -1]
    return logits.argmax(-1).tolist()


def _same_episodes(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.task_id, x.done, x.won, x.reward, x.error, x.messages) == (y.task_id, y.done, y.won, y.reward, y.error, y.messages)
        assert len(x.turns) == len(y.turns)
        for s, t in zip(x.turns, y.turns):
            assert s.prompt_ids == t.prompt_ids
            assert s.response_ids == t.response_ids
            assert (s.action, s.valid, s.reward, s.observation) == (t.action, t.valid, t.reward, t.observation)


def test_cached_rollout_is_the_reencoded_rollout(tiny, recorded, histories):
    """Episodes end at turns 1, 2, 4 and 5, one at reset, one is cut at max_turns 8; each turn is identical either way."""
    model, tokenizer = tiny
    tasks = ["talk-4", "talk-1", "talk-err", "talk-9", "talk-2", "talk-5", "talk-4"]
    reencoded = rollout(model, tokenizer, TalkPool(), "bandit", tasks, _config(), seed=3)
    cached = rollout(model, tokenizer, TalkPool(), "bandit", tasks, _config(kv_cache=True), seed=3)
    _same_episodes(reencoded, cached)
    assert [len(e.turns) for e in cached] == [4, 1, 0, 8, 2, 5, 4]
    assert cached[2].error and all(e.done for e in cached if e.task_id != "talk-9")
    caches = recorded[0]
    # the cache did the work: most prompt tokens came from it; finished episodes let theirs go
    assert caches.reused_tokens > 2 * caches.fed_tokens
    assert caches.fed_tokens + caches.reused_tokens == sum(len(t.prompt_ids) for e in cached for t in e.turns)
    assert set(caches.entries) == {3}  # talk-9 is cut at max_turns, still running
    assert histories[-1].rewindows == 0


def test_cached_rollout_matches_on_webshop(tiny):
    model, tokenizer = tiny
    with EnvPool("webshop", {}, 0) as pool:
        reencoded = rollout(model, tokenizer, pool, "webshop", ["0", "1", "2"], _config(max_turns=5), seed=0)
        cached = rollout(model, tokenizer, pool, "webshop", ["0", "1", "2"], _config(max_turns=5, kv_cache=True), seed=0)
    _same_episodes(reencoded, cached)
    assert [len(e.turns) for e in cached] == [5, 5, 5]


def test_reuse_across_rows_of_different_lengths(tiny):
    """Rows with different cached and new lengths (and one without a cache) in one batch give what
    re-encoding each prompt alone gives, and the reused prefix is exactly the common one."""
    model, tokenizer = tiny
    config = _config(max_new_tokens=5)
    caches = EpisodeCaches(model, tokenizer, config)
    first = {0: [5, 6, 7, 8, 9, 10, 11, 12], 1: [20, 21, 22], 2: [30, 31, 32, 33, 34]}
    replies = caches.sample(list(first), list(first.values()))
    assert replies == [sample_replies(model, tokenizer, [p], config)[0] for p in first.values()]
    # row 0 appends a long segment, row 1 a short one, row 2 diverges inside its prompt, row 3 is new
    second = {
        0: first[0] + replies[0] + list(range(40, 52)),
        1: first[1] + replies[1] + [60],
        2: first[2][:3] + [70, 71],
        3: [80, 81, 82, 83],
    }
    assert all(len(r) == 5 for r in replies)  # no EOS: the last reply token was never fed
    caches.fed_tokens = caches.reused_tokens = 0
    again = caches.sample(list(second), list(second.values()))
    assert again == [sample_replies(model, tokenizer, [p], config)[0] for p in second.values()]
    # common prefixes: 8 + 4, 3 + 4, 3 and 0 tokens; the widest new segment (13 for row 0) sets
    # how many columns are fed, so rows with less to feed re-feed some cached tokens
    n_new = max(len(second[0]) - 12, len(second[1]) - 7, len(second[2]) - 3, len(second[3]))
    assert n_new == 13
    assert caches.reused_tokens == sum(max(0, len(p) - n_new) for p in second.values())
    assert caches.entries[2].ids == second[2] + again[2][:4]


def test_a_window_jump_among_short_feeds_gets_a_batch_of_its_own():
    # 31 rows feed an observation (100 tokens), one a whole prompt after a jump (2000): one batch
    # would feed 32 x 2000 columns, two feed 31 x 100 + 2000
    assert split_by_feed([100] * 15 + [2000] + [100] * 16, min_saved=4096) == [[*range(15), *range(16, 32)], [15]]
    assert split_by_feed([100] * 3 + [2000], min_saved=10_000) == [[0, 1, 2, 3]]  # saves 5700: not worth a call
    assert split_by_feed([300, 320, 310, 290], min_saved=0) == [[0, 3], [1, 2]]  # 2 x 300 + 2 x 320 is the best cut
    assert split_by_feed([50, 50], min_saved=0) == [[0, 1]]  # nothing to save
    assert split_by_feed([7], min_saved=0) == [[0]]


def test_split_rows_reply_as_they_would_alone_and_feed_less(tiny, monkeypatch):
    """Two cached rows continue with a short segment, a third jumps to a long new prompt: cut into
    two batches, every row still gets what re-encoding its prompt alone gives."""
    model, tokenizer = tiny
    config = _config(max_new_tokens=4)
    first = {0: [5, 6, 7, 8, 9, 10], 1: [20, 21, 22, 23], 2: [30, 31, 32]}
    fed = {}
    for min_saved in (10**9, 0):  # never split, split where it saves anything
        monkeypatch.setattr(kv_cache, "SPLIT_MIN_SAVED_TOKENS", min_saved)
        caches = EpisodeCaches(model, tokenizer, config)
        replies = caches.sample(list(first), list(first.values()))
        second = {0: first[0] + replies[0] + [40], 1: first[1] + replies[1] + [41], 2: list(range(100, 160))}
        caches.fed_tokens = 0
        again = caches.sample(list(second), list(second.values()), seed=0)
        assert again == [sample_replies(model, tokenizer, [p], config)[0] for p in second.values()]
        assert [caches.entries[i].ids[: len(p)] for i, p in second.items()] == list(second.values())
        fed[min_saved] = caches.fed_tokens
    # unsplit, rows 0 and 1 re-feed their whole prompts (shorter than 60); split, only the reply's
    # last token (never fed) and the new one
    assert fed[10**9] == len(second[0]) + len(second[1]) + 60 and fed[0] == 2 + 2 + 60


def test_window_jumps_when_the_prompt_would_not_fit(tiny, histories):
    model, tokenizer = tiny
    limit, window = 260, 2
    config = _config(max_turns=8, history_window=window, max_prompt_tokens=limit, kv_cache=True)
    episodes = rollout(model, tokenizer, TalkPool(), "bandit", ["talk-8", "talk-6"], config, seed=1)
    assert histories[0].rewindows >= 2
    for episode in episodes:
        kept = []
        for t, turn in enumerate(episode.turns):
            assert len(turn.prompt_ids) <= limit
            history = episode.messages[: 2 + 2 * t]
            last = episode.turns[t - 1] if t else None
            if last and turn.prompt_ids[: len(last.prompt_ids) + len(last.response_ids)] == last.prompt_ids + last.response_ids:
                kept.append(kept[-1] + 1)  # the window grew: the previous prompt and reply, continued
            else:  # it jumped: the template's rendering of the task + the last w turns, for some w
                kept.append(next(w for w in range(t, -1, -1) if prompt_tokens(tokenizer, windowed(history, w)) == turn.prompt_ids))
            # and the model conditioned on exactly those tokens (what RL recomputes)
            assert _greedy_under_teacher_forcing(model, turn.prompt_ids, turn.response_ids) == turn.response_ids
        # the window grows one turn at a time and jumps back to at most `history_window` turns
        for before, after in zip(kept, kept[1:]):
            assert after == before + 1 or after <= window
        assert any(after <= before for before, after in zip(kept, kept[1:]))


@pytest.mark.parametrize("kv_cache", [False, True])
def test_prompts_are_what_the_model_conditioned_on(tiny, kv_cache):
    """Each prompt is the previous prompt + the reply as generated + the template's tokens for the
    next observation, and the model's output on it is what a fresh forward pass over it gives."""
    model, tokenizer = tiny
    episodes = rollout(model, tokenizer, TalkPool(), "bandit", ["talk-3", "talk-5"], _config(kv_cache=kv_cache), seed=0)
    for episode in episodes:
        for t, turn in enumerate(episode.turns):
            if t == 0:
                assert turn.prompt_ids == prompt_tokens(tokenizer, episode.messages[:2])
            else:
                last = episode.turns[t - 1]
                head = last.prompt_ids + last.response_ids
                assert turn.prompt_ids[: len(head)] == head
                rendered = render(tokenizer, episode.messages[: 2 + 2 * t])
                assert rendered.endswith(tokenizer.decode(turn.prompt_ids[len(head) :]))
                assert turn.observation in tokenizer.decode(turn.prompt_ids[len(head) :])
            assert _greedy_under_teacher_forcing(model, turn.prompt_ids, turn.response_ids) == turn.response_ids


def test_sampling_with_a_cache_runs_and_is_seeded(tiny):
    model, tokenizer = tiny
    config = _config(temperature=1.0, kv_cache=True)
    a = rollout(model, tokenizer, TalkPool(), "bandit", ["talk-3", "talk-3"], config, seed=7)
    b = rollout(model, tokenizer, TalkPool(), "bandit", ["talk-3", "talk-3"], config, seed=7)
    assert [[t.response_ids for t in e.turns] for e in a] == [[t.response_ids for t in e.turns] for e in b]


def test_sliding_window_models_are_refused(tiny):
    from transformers import MistralConfig, MistralForCausalLM

    model = MistralForCausalLM(
        MistralConfig(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            sliding_window=8,
        )
    )
    with pytest.raises(ValueError, match="sliding window"):
        EpisodeCaches(model, tiny[1], _config(kv_cache=True))


def test_turn_layer_writes_in_place_and_grows():
    from prismrl.rollout.kv_cache import TurnLayer

    keys, values = torch.zeros(2, 1, 4, 3), torch.zeros(2, 1, 4, 3)
    layer = TurnLayer(keys, values, 1)
    k, v = layer.update(torch.ones(2, 1, 2, 3), 2 * torch.ones(2, 1, 2, 3))
    assert k.shape[-2] == 3 and k.data_ptr() == keys.data_ptr() and layer.get_seq_length() == 3
    k, v = layer.update(3 * torch.ones(2, 1, 3, 3), 4 * torch.ones(2, 1, 3, 3))  # past the storage: it grows
    assert layer.get_seq_length() == 6 and layer.storage_keys.shape[-2] == 8
    assert k[0, 0, :, 0].tolist() == [0, 1, 1, 3, 3, 3] and v[1, 0, :, 2].tolist() == [0, 2, 2, 4, 4, 4]
