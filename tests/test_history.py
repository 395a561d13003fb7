"""Prompts continue the ids the model generated; they are re-encoded from text only where the window moves."""

import copy

import pytest

from prismrl.rollout import Episode, Turn
from prismrl.rollout.history import HistoryPrompts, prompt_tokens, render, windowed
from prismrl.train.rl import episode_samples

TASK = [
    {"role": "system", "content": "You are a shopping agent."},
    {"role": "user", "content": "Instruction: i want salaam tea. [SEP] Search"},
]


@pytest.fixture
def tokenizer(tiny):
    return tiny[1]


def _encode(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _non_canonical(tokenizer, head, word, tail):
    """`head + word + tail` as ids that split `word` in two where the tokenizer keeps it whole."""
    for cut in range(1, len(word)):
        ids = _encode(tokenizer, head) + _encode(tokenizer, word[:cut]) + _encode(tokenizer, word[cut:]) + _encode(tokenizer, tail)
        if ids != _encode(tokenizer, head + word + tail) and tokenizer.decode(ids) == head + word + tail:
            return ids
    raise AssertionError(f"{word!r} has no non-canonical split")


def _step(history, messages, prompt, reply, tokenizer, observation):
    """Append the reply (decoded and stripped, as the rollout records it) and the observation."""
    text = tokenizer.decode(reply, skip_special_tokens=True).strip()
    messages = messages + [{"role": "assistant", "content": text}, {"role": "user", "content": observation}]
    return messages, history.next(0, messages, prompt, reply)


@pytest.mark.parametrize("jumping", [False, True])
def test_a_non_canonical_reply_is_continued_as_sampled(tokenizer, jumping):
    history = HistoryPrompts(tokenizer, None, 100_000, jumping=jumping)
    first = history.next(0, TASK)
    assert first == prompt_tokens(tokenizer, TASK)
    reply = _non_canonical(tokenizer, "Thought: find it.\nAction: ", "search", "[salaam tea]") + [tokenizer.eos_token_id]
    messages, second = _step(history, TASK, first, reply, tokenizer, "Results: [SEP] B0001 [SEP] Salaam tea")
    assert second[: len(first) + len(reply)] == first + reply
    # re-encoding the text would have broken the prefix (what RL trained on before)
    assert prompt_tokens(tokenizer, messages)[: len(first) + len(reply)] != first + reply
    assert tokenizer.decode(second) == render(tokenizer, messages)  # same text, the sampled split
    reply2 = _encode(tokenizer, "Action: click[b0001]") + [tokenizer.eos_token_id]
    messages, third = _step(history, messages, second, reply2, tokenizer, "Salaam tea [SEP] Buy Now")
    assert third[: len(second) + len(reply2)] == second + reply2
    episode = Episode(
        "t", messages, turns=[Turn(first, reply, "", "a", True), Turn(second, reply2, "", "b", True), Turn(third, [7], "", "c", True)]
    )
    assert len(episode_samples(episode, [1.0, 1.0, 1.0])) == 1


def test_whitespace_the_transcript_strips_stays_in_the_prompt(tokenizer):
    history = HistoryPrompts(tokenizer, None, 100_000, jumping=True)
    first = history.next(0, TASK)
    reply = _encode(tokenizer, "Action: search[salaam tea]  \n") + [tokenizer.eos_token_id]
    messages, second = _step(history, TASK, first, reply, tokenizer, "Results")
    assert messages[2]["content"] == "Action: search[salaam tea]"
    assert second[: len(first) + len(reply)] == first + reply
    # the model conditioned on the whitespace it wrote, which the rendered transcript lacks
    assert tokenizer.decode(second) == render(tokenizer, messages).replace("tea]", "tea]  \n")


def test_a_reply_cut_at_max_new_tokens_gets_the_templates_end_of_turn(tokenizer):
    history = HistoryPrompts(tokenizer, None, 100_000, jumping=False)
    first = history.next(0, TASK)
    reply = _encode(tokenizer, "Thought: i should sea")  # no EOS: the budget ran out
    messages, second = _step(history, TASK, first, reply, tokenizer, "Invalid action.")
    assert second[: len(first) + len(reply)] == first + reply
    assert tokenizer.decode(second) == render(tokenizer, messages)  # the template's own end of turn follows


def test_a_template_that_rewrites_earlier_turns_is_re_encoded(tokenizer):
    counting = copy.deepcopy(tokenizer)
    # a template whose header changes with the history: no prompt is a prefix of the next
    counting.chat_template = "turns={{ messages|length }}\n" + tokenizer.chat_template
    history = HistoryPrompts(counting, None, 100_000, jumping=True)
    first = history.next(0, TASK)
    reply = _encode(counting, "Action: search[tea]") + [counting.eos_token_id]
    messages, second = _step(history, TASK, first, reply, counting, "Results")
    assert second == prompt_tokens(counting, messages)


def _talk(history, tokenizer, turns):
    """`turns` turns of one episode; each turn's window (turns kept) and prompt."""
    messages, prompt, reply, kept, prompts = TASK, None, None, [], []
    for t in range(turns):
        if t:
            messages, prompt = _step(history, messages, prompt, reply, tokenizer, f"Observation {t}: " + "word " * 20)
        else:
            prompt = history.next(0, messages)
        kept.append(history.kept[0])
        prompts.append((messages, prompt))
        reply = _encode(tokenizer, f"Action: click[item {t}]") + [tokenizer.eos_token_id]
    return kept, prompts


def test_a_sliding_window_re_encodes_once_it_moves(tokenizer):
    history = HistoryPrompts(tokenizer, 2, 100_000, jumping=False)
    kept, prompts = _talk(history, tokenizer, 5)
    assert kept == [0, 1, 2, 2, 2]
    for messages, prompt in prompts[3:]:
        assert prompt == prompt_tokens(tokenizer, windowed(messages, 2))
    assert history.rewindows == 0


def test_a_jumping_window_grows_until_the_budget_and_jumps_back(tokenizer):
    unlimited = HistoryPrompts(tokenizer, 2, 100_000, jumping=True)
    _, prompts = _talk(unlimited, tokenizer, 8)
    limit = len(prompts[4][1]) + 5  # room for the task + 4 turns (digits tokenize to different lengths)
    history = HistoryPrompts(tokenizer, 2, limit, jumping=True)
    kept, prompts = _talk(history, tokenizer, 8)
    assert kept == [0, 1, 2, 3, 4, 2, 3, 4]
    assert history.rewindows == 1
    assert all(len(prompt) <= limit for _, prompt in prompts)
    messages, prompt = prompts[5]
    assert prompt == prompt_tokens(tokenizer, windowed(messages, 2))


def test_a_continuation_over_the_budget_falls_back_to_a_fitted_window(tokenizer):
    grown = HistoryPrompts(tokenizer, None, 100_000, jumping=False)
    _, prompts = _talk(grown, tokenizer, 3)
    history = HistoryPrompts(tokenizer, None, len(prompts[2][1]) - 1, jumping=False)
    kept, prompts = _talk(history, tokenizer, 3)
    assert kept == [0, 1, 1]
    messages, prompt = prompts[2]
    assert prompt == prompt_tokens(tokenizer, windowed(messages, 1))
