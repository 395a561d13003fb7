"""The agent loop: multi-turn rollouts of a batch of episodes.

One turn samples a reply for every live episode at once (`prismrl.rollout.sampling`), parses
each reply's action, and steps all environments together through the pool; finished episodes
drop out. Each agent turn is kept as (prompt token ids, response token ids) exactly as sampled,
so RL trains on the very tokens the policy produced.

Each turn's prompt is the episode's history fitted to `history_window` and `max_prompt_tokens`,
as token ids that continue the previous prompt and reply while the window only grows
(`prismrl.rollout.history`). By default every turn feeds each episode's whole prompt to the
model. With `SamplingConfig(kv_cache=True)` each episode keeps its KV cache between turns and only
the new tokens are fed (`prismrl.rollout.kv_cache`); the prompt is then the history since a window
start that jumps forward only when `max_prompt_tokens` is reached, instead of the last
`history_window` turns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prismrl.envs.base import prompt_module
from prismrl.envs.react import parse_action
from prismrl.rollout.history import HistoryPrompts
from prismrl.rollout.kv_cache import EpisodeCaches
from prismrl.rollout.sampling import PlainSampler, Sampler, SamplingConfig


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
            "task_id": self.task_id,
            "task_type": self.task_type,
            "won": self.won,
            "reward": self.reward,
            "steps": len(self.turns),
            "invalid_actions": self.n_invalid,
            "error": self.error,
            "prompt_tokens": sum(len(t.prompt_ids) for t in self.turns),
            "generated_tokens": sum(len(t.response_ids) for t in self.turns),
            "messages": self.messages,
        }


def rollout(
    model, tokenizer, pool, env_name: str, task_ids: list[str], config: SamplingConfig, seed: int | None = None, engine=None
) -> list[Episode]:
    """Play one episode per task id (repeat ids for a GRPO group) with batched generation.

    `engine`: a `prismrl.rollout.vllm.VLLMEngine` to generate with instead of `model` (its prefix
    cache then stands in for `config.kv_cache`)."""
    prompt = prompt_module(env_name)
    sampler: Sampler
    if engine is not None:
        sampler = engine.sampler(tokenizer, config)
    elif config.kv_cache:
        sampler = EpisodeCaches(model, tokenizer, config)
    else:
        sampler = PlainSampler(model, tokenizer, config)
    history = HistoryPrompts(tokenizer, config.history_window, config.max_prompt_tokens, jumping=sampler.keeps_cache)
    episodes = []
    for task_id, (observation, info) in zip(task_ids, pool.reset(task_ids)):
        episode = Episode(
            task_id,
            [
                {"role": "system", "content": prompt.SYSTEM_PROMPT},
                {"role": "user", "content": prompt.observation_message(observation, info)},
            ],
            task_type=info.get("task_type"),
        )
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
        replies = sampler.sample(live, prompts, turn_seed)
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
                sampler.drop(i)
            else:
                episode.messages.append({"role": "user", "content": prompt.observation_message(outcome.observation, outcome.info)})
    return episodes
