"""Sampling replies: the settings every rollout shares, and the plain batched sampler.

A `Sampler` turns one token-id prompt per live episode into one token-id reply each, ending at
(and keeping) EOS, so RL trains on exactly the tokens that were sampled. Three implement it:
`PlainSampler` (here: the whole prompt through transformers' `generate` every turn),
`prismrl.rollout.kv_cache.EpisodeCaches` (each episode's keys/values kept between turns) and
`prismrl.rollout.vllm.VLLMSampler` (vLLM, whose prefix cache keeps them). `keeps_cache` tells the
history which window policy serves the sampler (`prismrl.rollout.history`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import LogitsProcessorList

from prismrl.padding import attention_mask, padded
from prismrl.rollout.decoding import NucleusWarper, gqa_prefill


@dataclass
class SamplingConfig:
    temperature: float = 0.4  # the paper's evaluation temperature; RL uses 1.0
    top_p: float = 1.0
    max_new_tokens: int = 96
    max_turns: int = 50
    history_window: int | None = 8  # agent turns of history kept in the prompt (None = all)
    max_prompt_tokens: int = 2048  # oldest turns beyond the window are also dropped to fit this
    # Keep each episode's KV cache between turns and feed only the new tokens (see
    # prismrl.rollout.kv_cache): the prompt grows turn by turn and the window jumps to the last
    # `history_window` turns only when `max_prompt_tokens` is reached.
    kv_cache: bool = False


class Sampler(Protocol):
    keeps_cache: bool  # True: prompts should grow and jump, not slide (history.HistoryPrompts)

    def sample(self, indices: list[int], prompts: list[list[int]], seed: int | None = None) -> list[list[int]]:
        """One reply per prompt; `indices` name the episodes the prompts belong to."""

    def drop(self, index: int) -> None:
        """Episode `index` has ended: forget what is kept for it."""


@torch.no_grad()
def sample_replies(
    model, tokenizer, prompts: list[list[int]], config: SamplingConfig, generator_seed: int | None = None, cache=None
) -> list[list[int]]:
    """Sample one reply per prompt in one left-padded batch; each reply ends at (and keeps) EOS.

    `cache`: a transformers Cache already holding the keys/values of the batch's first columns
    (`prismrl.rollout.kv_cache`); the rest is fed and the cache left filled."""
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id
    input_ids = padded(prompts, pad, left=True, device=device)
    attention = attention_mask([len(p) for p in prompts], left=True, device=device)
    width = input_ids.shape[1]
    if generator_seed is not None:
        torch.manual_seed(generator_seed)
    sampling = config.temperature > 0
    # temperature and top-p by NucleusWarper (same kept tokens, no full-vocabulary sort per step);
    # transformers' own warpers are switched off with the neutral 1.0s
    warpers = LogitsProcessorList([NucleusWarper(config.temperature, config.top_p)] if sampling else [])
    with gqa_prefill(model):
        output = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=config.max_new_tokens,
            do_sample=sampling,
            temperature=1.0 if sampling else None,
            top_p=1.0 if sampling else None,
            top_k=0 if sampling else None,
            logits_processor=warpers,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=pad,
            **({} if cache is None else {"cache": cache}),
        )
    replies = []
    for row in output[:, width:].tolist():
        end = row.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in row else len(row)
        replies.append(row[:end])
    return replies


class PlainSampler:
    """Every turn feeds each episode's whole prompt; nothing is kept between turns."""

    keeps_cache = False

    def __init__(self, model, tokenizer, config: SamplingConfig):
        self.model, self.tokenizer, self.config = model, tokenizer, config

    def sample(self, indices: list[int], prompts: list[list[int]], seed: int | None = None) -> list[list[int]]:
        return sample_replies(self.model, self.tokenizer, prompts, self.config, seed)

    def drop(self, index: int) -> None:
        pass
