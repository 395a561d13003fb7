import copy
from pathlib import Path

import pytest
import trl
from conftest import make_trajectory

from prismrl.data.format import IGNORE_INDEX, CannotEncode, encode


def _loss_positions(encoded):
    return [i for i, label in enumerate(encoded.labels) if label != IGNORE_INDEX]


def test_loss_only_on_assistant_generations(tiny):
    _, tokenizer = tiny
    trajectory = make_trajectory(1, turns=3)
    encoded = encode(trajectory, tokenizer)
    text = tokenizer.decode([t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE_INDEX])
    expected = "".join(m["content"] + "<|im_end|>\n" for m in trajectory.messages if m["role"] == "assistant")
    assert text == expected


def test_changing_an_observation_does_not_move_the_loss(tiny):
    _, tokenizer = tiny
    trajectory = make_trajectory(2, turns=3)
    edited = copy.deepcopy(trajectory)
    edited.messages[3]["content"] = edited.messages[3]["content"].replace("You see", "You notice")
    a, b = encode(trajectory, tokenizer), encode(edited, tokenizer)
    response = lambda e: [e.input_ids[i] for i in _loss_positions(e)]  # noqa: E731
    assert response(a) == response(b)
    assert a.n_response_tokens == b.n_response_tokens


def test_changing_an_assistant_token_changes_the_loss(tiny):
    import torch

    from prismrl.prism.probe import sft_loss

    model, tokenizer = tiny
    trajectory = make_trajectory(3, turns=2)
    edited = copy.deepcopy(trajectory)
    edited.messages[2]["content"] = edited.messages[2]["content"].replace("Action:", "Action: open")
    losses = []
    for t in (trajectory, edited):
        e = encode(t, tokenizer)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([e.input_ids])).logits
        losses.append(sft_loss(logits, torch.tensor([e.labels])).item())
    assert losses[0] != pytest.approx(losses[1], rel=1e-6)


def test_agentgym_loss_flag_removes_a_turn_from_the_mask(tiny):
    _, tokenizer = tiny
    trajectory = make_trajectory(4, turns=3)
    full = encode(trajectory, tokenizer)
    trajectory.messages[2]["loss"] = False
    flagged = encode(trajectory, tokenizer)
    assert flagged.input_ids == full.input_ids
    assert flagged.n_response_tokens < full.n_response_tokens


def test_truncation_keeps_system_and_task_and_drops_oldest_turns(tiny):
    _, tokenizer = tiny
    trajectory = make_trajectory(5, turns=6)
    full = encode(trajectory, tokenizer)
    short = encode(trajectory, tokenizer, max_length=full.n_tokens - 1)
    assert short.truncated and short.n_dropped_turns >= 1 and short.n_tokens < full.n_tokens
    text = tokenizer.decode(short.input_ids)
    assert trajectory.messages[0]["content"] in text and trajectory.messages[1]["content"] in text
    assert trajectory.messages[-1]["content"] in text
    assert trajectory.messages[2]["content"] not in text
    assert not encode(trajectory, tokenizer, max_length=full.n_tokens).truncated


def test_too_long_even_after_dropping_turns_names_the_item(tiny):
    _, tokenizer = tiny
    with pytest.raises(CannotEncode, match="t006"):
        encode(make_trajectory(6, turns=3), tokenizer, max_length=10)


TRL_TEMPLATES = Path(trl.__file__).parent / "chat_templates"


@pytest.mark.parametrize("template", ["qwen3.jinja", "llama3_1.jinja"])
def test_real_chat_templates_encode_multi_turn_and_match_rollout_prompts(template):
    from prismrl.rollout.history import prompt_tokens
    from prismrl.models import _complete, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = (TRL_TEMPLATES / template).read_text()
    _complete(tokenizer)  # what load_model / load_tokenizer do to every tokenizer
    trajectory = make_trajectory(0, turns=3)
    encoded = encode(trajectory, tokenizer)
    messages = trajectory.messages
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        # The rollout prompt of turn i is exactly the tokens SFT conditions that turn on, and the
        # loss begins right after it (no thinking block left to generate).
        prompt = prompt_tokens(tokenizer, messages[:i])
        assert encoded.input_ids[: len(prompt)] == prompt
        assert encoded.labels[len(prompt) - 1] == IGNORE_INDEX and encoded.labels[len(prompt)] != IGNORE_INDEX
        assert "<think>" not in tokenizer.decode([t for t in encoded.labels[len(prompt) :] if t != IGNORE_INDEX][:8])
