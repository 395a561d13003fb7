"""Multi-turn rollouts that keep each episode's KV cache between turns (`SamplingConfig.kv_cache`).

Re-encoding (the reference path, `prismrl.rollout.sampling.PlainSampler`) feeds every episode's whole (windowed) history
through the model again at every turn, so the prefill work of an episode grows with the square of
its length. Here each episode keeps the keys/values of the tokens it has already seen, and a turn
only feeds what is new: the end of the last reply, the observation and the generation prompt.

What the prompt is
------------------
`prismrl.rollout.history.HistoryPrompts(jumping=True)`: the system prompt + task + every (agent turn,
observation) pair since a window start, which jumps forward only when the prompt would exceed
`max_prompt_tokens` (sliding it one turn at a time would change the tokens right after the task
and so invalidate everything cached behind them). While the window only grows, each prompt is the
previous prompt + the reply as generated + the template's tokens for the observation, so with
`history_window=None` and a large enough `max_prompt_tokens` both paths give the very same
prompts. (With `history_window=None` an episode near the limit re-windows at every turn, which is
re-encoding; give it a window to make the jumps rare.)

Which tokens are reused
-----------------------
The cache is used for the longest common prefix of the prompt with the tokens whose keys/values
an episode holds (its previous prompt + the reply as generated, EOS included). While the window
grows that is all of them, and only the template's separator, the observation and the generation
prompt are fed. After a window jump (or where a chat template does not render a reply as its text
followed by the template's own tokens, so the prompt is re-encoded from text), the reuse simply
stops at the first differing token and the rest is fed again. Hence `Turn.prompt_ids` is always
exactly the token sequence the model conditioned on (cached prefix + fed suffix), so RL's log-prob
recomputation on `prompt_ids + response_ids` scores the tokens the policy actually saw. At least
one token is always fed (the model needs a query to produce logits).

Batching: per-episode caches, re-padded every turn
--------------------------------------------------
A single batched cache would need holes: the episodes' new segments have different lengths, so
appending them to one left-padded cache leaves padding in the middle, more each turn, and a
per-row cut at the first differing token is not possible. Instead each episode keeps its own
unpadded keys/values (one `[heads, tokens, head_dim]` pair per layer), and every turn builds a
left-padded batch that is laid out *exactly* like the re-encode path's batch (`sampling.sample_replies`):
row i is `pad * (width - L_i) + prompt_i`. The first `width - n_new` columns come from the caches
and the last `n_new` columns are fed, where `n_new` is the largest number of tokens any row must
feed; a row with less to feed re-feeds its last few cached tokens, which is cheap and keeps every
row purely left-padded. Position ids are the cumsum of the attention mask, in generate as in this
layout, so a cached key sits at the same position (same rotary phase) it was computed at, and the
attention mask hides the zero-filled padding columns. After sampling, each live episode copies
out its own slice (prompt + reply, as far as the batch fed it); finished episodes are dropped.

One row with a whole prompt to feed (a window jump) thus makes every row feed that many tokens:
with 32 episodes near the prompt budget, most turns would prefill 32 whole prompts. So a turn's
rows are cut into two batches, by how much each must feed, where that saves more than
`SPLIT_MIN_SAVED_TOKENS` fed tokens (the second batch's own decode steps are the price). A row's
reply does not depend on its batch's other rows beyond float rounding (left padding is masked);
the second batch continues the first's seeded random stream.

The turn's batch cache is allocated once, with room for the fed columns and `max_new_tokens`
(`TurnLayer`): transformers' `DynamicLayer` grows by `torch.cat`, copying every layer's whole
cache at every generated token, which at a few thousand tokens of context is a good part of a
decode step on a CPU. (The first turn, with nothing cached, uses a plain `DynamicCache`.)
The copy in and out costs one pass over the cached keys/values per turn (46 KB per token for
SmolLM2-135M), small next to the prefill it saves, and memory holds one cache per live episode.
Models whose cache is not plain full attention (sliding window, linear attention) are refused.

Numerics: a cached key was computed in an earlier, shorter forward pass, so logits differ from
re-encoding by float rounding only; greedy decoding gives the same replies in the tests, and at
temperature > 0 the sampling distribution is the same (the random stream is seeded as before).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.cache_utils import DynamicLayer

from prismrl.errors import ConfigError
from prismrl.rollout.sampling import SamplingConfig, sample_replies


@dataclass
class _Entry:
    ids: list[int]  # the tokens whose keys/values are held
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values, [heads, len(ids), head_dim]


class TurnLayer(DynamicLayer):
    """One layer's keys/values for one turn's batch, in storage allocated once for the whole turn
    (cached + fed columns + `max_new_tokens`). transformers' `DynamicLayer.update` appends with
    `torch.cat`, which copies the layer's whole cache at every generated token; this one writes
    the new columns in place and hands out a view of the filled part (grown by doubling if a turn
    ever needs more). Only what generate's sampling uses is supported (no crop, no beam reorder)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int):
        super().__init__()
        self.storage_keys, self.storage_values, self.length = keys, values, length
        self.device, self.is_initialized = keys.device, True
        self.keys, self.values = keys[:, :, :length], values[:, :, :length]

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        if end > self.storage_keys.shape[-2]:
            grown = (*self.storage_keys.shape[:2], max(end, 2 * self.storage_keys.shape[-2]), self.storage_keys.shape[-1])
            for name in ("storage_keys", "storage_values"):
                old = getattr(self, name)
                setattr(self, name, old.new_empty(grown))
                getattr(self, name)[:, :, : self.length] = old[:, :, : self.length]
        self.storage_keys[:, :, self.length : end] = key_states
        self.storage_values[:, :, self.length : end] = value_states
        self.length = end
        self.keys, self.values = self.storage_keys[:, :, :end], self.storage_values[:, :, :end]
        return self.keys, self.values


# A second generate call pays up to max_new_tokens more decode steps. docs/PERFORMANCE.md's KV-cache
# rollout (SmolLM2-135M, 2 CPU cores, batch 8) decoded at ~0.26 s a step and prefilled ~410 tokens/s,
# so 64 extra steps cost at most what ~6,800 fed tokens do (fewer when replies end early). Not tuned:
# benchmarks/kv_split_bench.py measured this value a net gain (0.92x the seconds).
SPLIT_MIN_SAVED_TOKENS = 4096


def split_by_feed(needs: list[int], min_saved: int) -> list[list[int]]:
    """The rows of a turn's batch as one group, or two where feeding each group only as many
    columns as its own widest row saves more than `min_saved` fed tokens. `needs[row]`: the tokens
    that row must feed. The cut is the best one in the rows sorted by need."""
    order = sorted(range(len(needs)), key=needs.__getitem__)
    widest = needs[order[-1]] if order else 0
    best_cut, best_fed = None, len(needs) * widest - min_saved
    for cut in range(1, len(order)):
        fed = cut * needs[order[cut - 1]] + (len(order) - cut) * widest
        if fed < best_fed:
            best_cut, best_fed = cut, fed
    if best_cut is None:
        return [list(range(len(needs)))]
    return [sorted(order[:best_cut]), sorted(order[best_cut:])]


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class EpisodeCaches:
    """The KV caches of one rollout's episodes, keyed by episode index.

    A `Sampler`: per turn `sample(indices, prompts, seed)` with each live episode's prompt (grown
    and jumped by `HistoryPrompts(jumping=True)`, as `keeps_cache` asks); `drop(i)` when an
    episode ends. Counters `fed_tokens` / `reused_tokens` say how much prefill the cache saved.
    """

    keeps_cache = True

    def __init__(self, model, tokenizer, config: SamplingConfig):
        from transformers import DynamicCache

        probe = DynamicCache(config=model.config)
        if any(type(layer) is not DynamicLayer for layer in probe.layers):
            raise ConfigError(
                "kv_cache needs a model whose cache is plain full attention (no sliding window or "
                "linear attention); use kv_cache=False for this model"
            )
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.entries: dict[int, _Entry] = {}
        self.fed_tokens = 0
        self.reused_tokens = 0

    def drop(self, index: int) -> None:
        self.entries.pop(index, None)

    @torch.no_grad()
    def sample(self, indices: list[int], prompts: list[list[int]], seed: int | None = None) -> list[list[int]]:
        """`sample_replies` for these episodes' prompts, reusing and then extending their caches."""
        reuse = []
        for index, ids in zip(indices, prompts):
            entry = self.entries.get(index)
            reuse.append(min(common_prefix(entry.ids, ids), len(ids) - 1) if entry else 0)
        replies: list[list[int]] = [[] for _ in prompts]
        for group, rows in enumerate(split_by_feed([len(ids) - r for ids, r in zip(prompts, reuse)], SPLIT_MIN_SAVED_TOKENS)):
            sampled = self._sample_batch(
                [indices[r] for r in rows], [prompts[r] for r in rows], [reuse[r] for r in rows], seed if group == 0 else None
            )
            for row, reply in zip(rows, sampled):
                replies[row] = reply
        return replies

    def _sample_batch(self, indices: list[int], prompts: list[list[int]], reuse: list[int], seed: int | None) -> list[list[int]]:
        """One left-padded batch: cached columns copied in, the rest fed, each row's cache copied out."""
        from transformers import DynamicCache

        width = max(len(ids) for ids in prompts)
        n_new = max(len(ids) - r for ids, r in zip(prompts, reuse))
        past = width - n_new  # columns of the left-padded batch served from the caches
        self.fed_tokens += sum(min(len(ids), n_new) for ids in prompts)
        self.reused_tokens += sum(max(0, len(ids) - n_new) for ids in prompts)

        cache = DynamicCache()
        if past > 0:
            template = next(self.entries[i].kv for i, ids in zip(indices, prompts) if len(ids) > n_new)
            layers = []
            for layer, (k0, v0) in enumerate(template):
                shape = (len(prompts), k0.shape[0], width + self.config.max_new_tokens, k0.shape[2])
                keys, values = k0.new_empty(shape), v0.new_empty(shape)
                for row, (index, ids) in enumerate(zip(indices, prompts)):
                    used = max(0, len(ids) - n_new)  # this row's tokens in the cached columns (<= its reuse)
                    keys[row, :, : past - used] = 0  # padding: masked, but must be finite
                    values[row, :, : past - used] = 0
                    if used > 0:
                        k, v = self.entries[index].kv[layer]
                        keys[row, :, past - used : past] = k[:, :used]
                        values[row, :, past - used : past] = v[:, :used]
                layers.append(TurnLayer(keys, values, past))
            cache.layers = layers

        replies = sample_replies(self.model, self.tokenizer, prompts, self.config, seed, cache=cache)

        held = cache.get_seq_length()  # the batch's columns whose keys/values were computed
        for row, (index, ids, reply) in enumerate(zip(indices, prompts, replies)):
            pad = width - len(ids)
            tokens = (ids + reply)[: held - pad]
            kv = [
                (layer.keys[row, :, pad : pad + len(tokens)].clone(), layer.values[row, :, pad : pad + len(tokens)].clone())
                for layer in cache.layers
            ]
            self.entries[index] = _Entry(tokens, kv)
        return replies
