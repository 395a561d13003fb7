"""One formatter from trajectory to tokens + loss mask, shared by the probe, SFT and RL.

Loss falls on what the model would generate in each assistant turn: the text between the
generation prompt (`<|im_start|>assistant\\n` for ChatML) and the start of the next message,
end-of-turn token included. Prompts, observations and turns flagged `loss: false` (AgentGym)
carry none. Using the chat template's own rendering of message prefixes to find those spans
works for any template, with no per-model special cases.
"""

from __future__ import annotations

from dataclasses import dataclass

from prismrl.data.schema import Trajectory
from prismrl.errors import ConfigError, InputError

IGNORE_INDEX = -100
# Long enough for every trajectory the project generates (WebShop-synthetic up to ~3k tokens with
# the ReAct prompt): a default that cut them would probe and train on their last turns only.
DEFAULT_MAX_LENGTH = 4096


class CannotEncode(InputError):
    """No response token survives: too long for the run's context length, or every turn is loss-free."""


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]  # the token id where it carries loss, IGNORE_INDEX elsewhere
    n_dropped_turns: int  # assistant turns removed by truncation

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def n_response_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)

    @property
    def truncated(self) -> bool:
        return self.n_dropped_turns > 0


def _render(tokenizer, messages, add_generation_prompt=False) -> str:
    # Non-thinking mode for templates that have one (Qwen3), as at rollout (history.prompt_tokens).
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt, enable_thinking=False)


def encode_messages(messages: list[dict], tokenizer) -> tuple[list[int], list[int]]:
    """Token ids and labels of a full conversation, loss on assistant generations only."""
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    text = _render(tokenizer, plain)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or message.get("loss") is False:
            continue
        prompt = _render(tokenizer, plain[:i], add_generation_prompt=True)
        through_turn = _render(tokenizer, plain[: i + 1])
        if not (text.startswith(through_turn) and through_turn.startswith(prompt)):
            raise ConfigError(
                "the chat template does not render a conversation's prefixes as prefixes of the whole, "
                "so assistant turns cannot be located; use a template without history rewriting"
            )
        spans.append((len(prompt), len(through_turn)))
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = encoding["input_ids"]
    labels = [IGNORE_INDEX] * len(ids)
    span_index = 0
    for t, (char_start, _) in enumerate(encoding["offset_mapping"]):
        while span_index < len(spans) and char_start >= spans[span_index][1]:
            span_index += 1
        if span_index < len(spans) and spans[span_index][0] <= char_start:
            labels[t] = ids[t]
    return ids, labels


def _first_droppable(messages: list[dict]) -> int:
    """Index of the oldest agent turn after the system prompt and the task (first user message)."""
    for i, message in enumerate(messages):
        if message["role"] == "user":
            return i + 1
    return 1 if messages and messages[0]["role"] == "system" else 0


def encode(trajectory: Trajectory, tokenizer, max_length: int | None = None) -> Encoded:
    """Encode a trajectory; beyond `max_length`, drop the oldest (agent turn, observation) pairs
    after the system prompt and task until it fits. Raise CannotEncode when nothing learnable fits."""
    messages = list(trajectory.messages)
    dropped = 0
    while True:
        ids, labels = encode_messages(messages, tokenizer)
        if max_length is None or len(ids) <= max_length:
            break
        cut = _first_droppable(messages)
        remaining_agent_turns = sum(m["role"] == "assistant" for m in messages[cut:])
        if remaining_agent_turns <= 1:
            raise CannotEncode(
                f"trajectory {trajectory.id!r}: {len(ids)} tokens even with only its last agent turn kept; "
                f"raise --max-length above {max_length}"
            )
        # Drop the oldest agent turn together with the observation that answered it.
        end = cut + 1
        while end < len(messages) and messages[end]["role"] != "assistant":
            end += 1
        messages = messages[:cut] + messages[end:]
        dropped += 1
    if not any(label != IGNORE_INDEX for label in labels):
        raise CannotEncode(f"trajectory {trajectory.id!r}: no assistant token carries loss")
    return Encoded(input_ids=ids, labels=labels, n_dropped_turns=dropped)
