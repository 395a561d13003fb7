"""What the agent sees at each turn: its history as prompt token ids, fitted to a token budget.

A prompt is the system prompt + task (the first two messages) + the last `w` (agent turn,
observation) pairs, rendered by the chat template with its generation prompt. Which `w`:

* sliding (the re-encode path): the last `history_window` turns (all when None), fewer until the
  prompt fits `max_prompt_tokens`; the window moves one turn every turn once it is full.
* jumping (the KV-cache path, `prismrl.rollout.kv_cache`): every turn since a window start, which
  jumps forward only when the prompt would not fit, to keep the last `history_window` turns (fewer
  if they still do not fit). Sliding would change the tokens right after the task every turn and so
  invalidate every cached key behind them.

Token in, token out. While the window keeps every turn the previous prompt held (it only grows),
the prompt is the previous prompt + the reply *exactly as the model generated it* + the template's
tokens for what follows it (end of turn, the observation, the generation prompt). Re-tokenizing the
reply's text instead does not give back the sampled ids: at temperature 1.0 SmolLM2 often samples
a non-canonical split (' Sal' 'aam' where the tokenizer writes ' Salaam'), and the transcript's text
is stripped of the trailing whitespace the model wrote. On one WebShop rollout of the base model
(`scripts/rollout_sequences.py`: 4 episodes, 8 turns, temperature 1.0) re-tokenizing turned one
episode's training sequence into three. Continuing the ids keeps every turn's prompt a prefix of the next,
so the KV cache is reused in full and RL trains the whole episode as one sequence
(`train.rl.episode_samples`), on exactly the tokens the policy conditioned on. Where the window
moves, the prompt is rendered and tokenized afresh from the transcript's text (a new sequence).
SFT and the probe train on the canonical tokenization of the same text (`prismrl.data.format`);
the two differ only where the model sampled a non-canonical split or whitespace, which the
transcript records as text.
"""

from __future__ import annotations

Messages = list[dict[str, str]]


def windowed(messages: Messages, window: int | None) -> Messages:
    """System prompt + task (first user turn) + the last `window` (agent turn, observation) pairs."""
    if window is None:
        return messages
    head = messages[:2]
    body = messages[2:]
    # body alternates assistant, user, ..., ending with the latest observation
    keep = body[max(0, len(body) - 2 * window) :]
    return head + keep


def render(tokenizer, messages: Messages) -> str:
    """The chat template's rendering of `messages` + the generation prompt."""
    # Non-thinking mode (Qwen3): the expert trajectories have no reasoning blocks, and SFT and the
    # probe format with the same flag (prismrl.data.format).
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)


def prompt_tokens(tokenizer, messages: Messages) -> list[int]:
    """The chat template's rendering of `messages` + the generation prompt, tokenized."""
    return tokenizer(render(tokenizer, messages), add_special_tokens=False)["input_ids"]


def continued(tokenizer, before: Messages, after: Messages, prompt_ids: list[int], reply_ids: list[int]) -> list[int] | None:
    """`prompt_ids` (the prompt rendered from `before`) + `reply_ids` as generated + the template's
    tokens for the rest of `after` (= `before` + the reply's message + the next observation), or
    None when the template does not render `after` as `before`'s text followed by the reply's."""
    head, full = render(tokenizer, before), render(tokenizer, after)
    reply_text = after[len(before)]["content"]
    if not full.startswith(head + reply_text):
        return None
    tail = full[len(head) + len(reply_text) :]
    if reply_ids and reply_ids[-1] == tokenizer.eos_token_id:
        # the generated EOS is the template's end of turn; a reply cut at max_new_tokens gets the
        # template's own end-of-turn tokens after it
        if not tail.startswith(tokenizer.eos_token):
            return None
        tail = tail[len(tokenizer.eos_token) :]
    return prompt_ids + reply_ids + tokenizer(tail, add_special_tokens=False)["input_ids"]


class HistoryPrompts:
    """The next prompt of each episode of one rollout, keyed by episode index: `next(i, messages,
    last_prompt, last_reply)`. `rewindows` counts the jumps of the jumping policy."""

    def __init__(self, tokenizer, history_window: int | None, max_prompt_tokens: int, jumping: bool):
        self.tokenizer, self.history_window, self.max_prompt_tokens, self.jumping = tokenizer, history_window, max_prompt_tokens, jumping
        self.kept: dict[int, int] = {}  # episode index -> agent turns its last prompt held
        self.rewindows = 0

    def next(self, index: int, messages: Messages, last_prompt: list[int] | None = None, last_reply: list[int] | None = None) -> list[int]:
        turns = (len(messages) - 2) // 2  # (agent turn, observation) pairs so far
        grown = self.kept.get(index, -1) + 1  # the last prompt's turns + the one since (0 at first)
        if self.jumping:
            window = grown
        else:
            window = turns if self.history_window is None else min(self.history_window, turns)
        if index in self.kept and window == grown and last_prompt is not None:
            ids = continued(self.tokenizer, windowed(messages[:-2], grown - 1), windowed(messages, grown), last_prompt, last_reply)
            if ids is not None and len(ids) <= self.max_prompt_tokens:
                self.kept[index] = window
                return ids
        ids = prompt_tokens(self.tokenizer, windowed(messages, window))
        if len(ids) > self.max_prompt_tokens and window > 0:
            window -= 1
            if self.jumping:  # keep the last `history_window` turns (as many as fit when None)
                self.rewindows += 1
                window = window if self.history_window is None else min(window, self.history_window)
            ids, window = self._fitted(messages, window)
        self.kept[index] = window
        return ids

    def _fitted(self, messages: Messages, window: int) -> tuple[list[int], int]:
        """The prompt of the largest window <= `window` that fits (the task alone if none does)."""
        while True:
            ids = prompt_tokens(self.tokenizer, windowed(messages, window))
            if len(ids) <= self.max_prompt_tokens or window == 0:
                return ids, window
            window -= 1
