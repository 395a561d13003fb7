"""The LLM agent: prompts with a windowed history, batched generation, multi-turn rollouts.

One rollout step generates for every live episode at once (left-padded batch), parses each
reply's action, and steps all environments together through the pool; finished episodes drop
out. Each agent turn is kept as (prompt token ids, response token ids) exactly as generated, so
RL trains on the very tokens the policy produced.

Each turn's prompt is the episode's history fitted to `history_window` and `max_prompt_tokens`,
as token ids that continue the previous prompt and reply while the window only grows
(`prismrl.history`). By default every turn feeds each episode's whole prompt to the model. With
`SamplingConfig(kv_cache=True)` each episode keeps its KV cache between turns and only the new
tokens are fed (`prismrl.rollout_cache`); the prompt is then the history since a window start that
jumps forward only when `max_prompt_tokens` is reached, instead of the last `history_window` turns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import LogitsProcessorList

from prismrl.decoding import NucleusWarper, gqa_prefill
from prismrl.envs.base import prompt_module
from prismrl.envs.react import parse_action
from prismrl.history import HistoryPrompts


@dataclass
class SamplingConfig:
    temperature: float = 0.4  # the paper's evaluation temperature; RL uses 1.0
    top_p: float = 1.0
    max_new_tokens: int = 96
    max_turns: int = 50
    history_window: int | None = 8  # agent turns of history kept in the prompt (None = all)
    max_prompt_tokens: int = 2048  # oldest turns beyond the window are also dropped to fit this
    # Keep each episode's KV cache between turns and feed only the new tokens (see
    # prismrl.rollout_cache): the prompt grows turn by turn and the window jumps to the last
    # `history_window` turns only when `max_prompt_tokens` is reached.
    kv_cache: bool = False


@dataclass
class Turn:
    prompt_ids: list[int]
    response_ids: list[int]
    observation: str  # what the agent saw when it acted (the anchor state for GiGPO)
    action: str
    valid: bool
    reward: float = 0.0


@dataclass
class Episode:
    task_id: str
    messages: list[dict[str, str]]  # the full transcript
    turns: list[Turn] = field(default_factory=list)
    done: bool = False
    won: bool = False
    reward: float = 0.0  # environment reward, summed over the episode
    task_type: str | None = None
    error: str | None = None

    @property
    def n_invalid(self) -> int:
        return sum(not t.valid for t in self.turns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id, "task_type": self.task_type, "won": self.won, "reward": self.reward,
            "steps": len(self.turns), "invalid_actions": self.n_invalid, "error": self.error,
            "prompt_tokens": sum(len(t.prompt_ids) for t in self.turns),
            "generated_tokens": sum(len(t.response_ids) for t in self.turns), "messages": self.messages,
        }


@torch.no_grad()
def generate(model, tokenizer, prompts: list[list[int]], config: SamplingConfig, generator_seed: int | None = None,
             cache=None) -> list[list[int]]:
    """Sample one reply per prompt in one left-padded batch; each reply ends at (and keeps) EOS.

    `cache`: a transformers Cache already holding the keys/values of the batch's first columns
    (`prismrl.rollout_cache`); generate feeds the rest and leaves the cache filled."""
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long, device=device)
    attention = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, device=device)
        attention[row, width - len(ids) :] = 1
    if generator_seed is not None:
        torch.manual_seed(generator_seed)
    sampling = config.temperature > 0
    # temperature and top-p by NucleusWarper (same kept tokens, no full-vocabulary sort per step);
    # transformers' own warpers are switched off with the neutral 1.0s
    warpers = LogitsProcessorList([NucleusWarper(config.temperature, config.top_p)] if sampling else [])
    with gqa_prefill(model):
        output = model.generate(
            input_ids=input_ids, attention_mask=attention, max_new_tokens=config.max_new_tokens,
            do_sample=sampling, temperature=1.0 if sampling else None, top_p=1.0 if sampling else None,
            top_k=0 if sampling else None, logits_processor=warpers, eos_token_id=tokenizer.eos_token_id, pad_token_id=pad,
            **({} if cache is None else {"cache": cache}),
        )
    replies = []
    for row in output[:, width:].tolist():
        end = row.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in row else len(row)
        replies.append(row[:end])
    return replies


def rollout(model, tokenizer, pool, env_name: str, task_ids: list[str], config: SamplingConfig, seed: int | None = None,
            engine=None) -> list[Episode]:
    """Play one episode per task id (repeat ids for a GRPO group) with batched generation.

    `engine`: a `prismrl.vllm_engine.VLLMEngine` to generate with instead of `model` (its prefix
    cache then stands in for `config.kv_cache`)."""
    prompt = prompt_module(env_name)
    caches = None
    if config.kv_cache and engine is None:
        from prismrl.rollout_cache import EpisodeCaches

        caches = EpisodeCaches(model, tokenizer, config)
    history = HistoryPrompts(tokenizer, config.history_window, config.max_prompt_tokens, jumping=caches is not None)
    episodes = []
    for task_id, (observation, info) in zip(task_ids, pool.reset(task_ids)):
        episode = Episode(task_id, [{"role": "system", "content": prompt.SYSTEM_PROMPT},
                                    {"role": "user", "content": prompt.observation_message(observation, info)}],
                          task_type=info.get("task_type"))
        if info.get("error"):
            episode.done, episode.error = True, info["error"]
        episodes.append(episode)
    for turn_index in range(config.max_turns):
        live = [i for i, e in enumerate(episodes) if not e.done]
        if not live:
            break
        turn_seed = None if seed is None else seed * 100_003 + turn_index
        prompts = []
        for i in live:
            last = episodes[i].turns[-1] if episodes[i].turns else None
            prompts.append(history.next(i, episodes[i].messages, last and last.prompt_ids, last and last.response_ids))
        if caches is not None:
            replies = caches.generate(live, prompts, turn_seed)
        elif engine is not None:
            replies = engine.generate(tokenizer, prompts, config, turn_seed)
        else:
            replies = generate(model, tokenizer, prompts, config, turn_seed)
        actions = {}
        for i, ids, reply in zip(live, prompts, replies):
            text = tokenizer.decode(reply, skip_special_tokens=True).strip()
            parsed = parse_action(text)
            episode = episodes[i]
            episode.turns.append(Turn(ids, reply, episode.messages[-1]["content"], parsed.action, parsed.valid))
            episode.messages.append({"role": "assistant", "content": text})
            actions[i] = parsed.action
        for i, outcome in pool.step(actions).items():
            episode = episodes[i]
            episode.turns[-1].reward = outcome.reward
            episode.reward += outcome.reward
            episode.won = outcome.won
            episode.error = outcome.error
            if outcome.done or outcome.error:
                episode.done = True
                if caches is not None:
                    caches.drop(i)
            else:
                episode.messages.append({"role": "user", "content": prompt.observation_message(outcome.observation, outcome.info)})
    return episodes
