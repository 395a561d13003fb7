"""Two costs of transformers' sampling loop on a CPU that do not change what is sampled.

Measured on 2 cores, SmolLM2-135M, batch 16 with ~2.5k cached tokens (`benchmarks/decode_bench.py`,
`benchmarks/decode_kernels_bench.py`):

* Nucleus sampling: `TopPLogitsWarper` sorts the whole 49k vocabulary of every row at every step
  (~57 ms of a ~0.5 s decode step). A peaked distribution's nucleus is far smaller than that, so
  `NucleusWarper` takes the top `candidates` first and only sorts everything when they do not
  reach `top_p` (then over the whole sorted vocabulary, as transformers does).
* Grouped-query attention over a cache with several new tokens (every turn's observation):
  transformers' SDPA path copies the keys/values once per query-head group (`repeat_kv`,
  ~118 ms per layer at 20 new tokens over ~2.8k cached) because its CUDA kernels cannot take a
  mask with `enable_gqa`; torch's CPU kernels can (~40 ms, same result). `gqa_prefill(model)`
  switches a model to that attention for a block. One-token decode steps keep transformers' path
  (it already folds the head groups into the query, and `enable_gqa` is slower there).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers import AttentionInterface, LogitsProcessor
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

from prismrl.errors import ConfigError

GQA_PREFILL = "sdpa_gqa_prefill"


class NucleusWarper(LogitsProcessor):
    """Temperature, then top-p: the same kept set as transformers' `TemperatureLogitsWarper` +
    `TopPLogitsWarper` (a token stays iff the probability mass ranked strictly above it is below
    `top_p`; at least one stays), found among the top `candidates` tokens when their mass reaches
    `top_p`. Only the rounding of the cumulative sums differs (descending over a few hundred
    tokens here, ascending over the vocabulary there), which can move a token lying exactly on
    the boundary."""

    def __init__(self, temperature: float, top_p: float, candidates: int = 1024):
        if not 0.0 < top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], got {top_p}")
        self.temperature, self.top_p, self.candidates = temperature, top_p, candidates

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores / self.temperature
        if self.top_p >= 1.0:
            return scores
        probs = scores.softmax(dim=-1)
        top, index = probs.topk(min(self.candidates, probs.shape[-1]), dim=-1)
        if bool((top.sum(dim=-1) < self.top_p).any()):  # a flat row: the nucleus may reach past the candidates
            top, index = probs.sort(dim=-1, descending=True)
        mass_above = top.cumsum(dim=-1) - top
        keep_sorted = mass_above < self.top_p
        keep_sorted[:, 0] = True
        keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, index, keep_sorted)
        return scores.masked_fill(~keep, -float("inf"))


def _gqa_prefill_attention(module, query, key, value, attention_mask, **kwargs):
    """transformers' SDPA attention, but several query tokens attend to grouped key/value heads
    through torch's `enable_gqa` instead of copies of the cache."""
    groups = getattr(module, "num_key_value_groups", 1)
    q_length, kv_length = query.shape[2], key.shape[2]
    # without a mask, SDPA's is_causal is only right when the queries are the whole sequence
    unmasked_with_cache = attention_mask is None and q_length != kv_length
    if groups == 1 or q_length == 1 or query.device.type != "cpu" or unmasked_with_cache or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    output = torch.nn.functional.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=attention_mask,
        dropout_p=kwargs.get("dropout", 0.0),
        scale=kwargs.get("scaling"),
        is_causal=attention_mask is None,
        enable_gqa=True,
    )
    return output.transpose(1, 2).contiguous(), None


AttentionInterface.register(GQA_PREFILL, _gqa_prefill_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(GQA_PREFILL, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


@contextmanager
def gqa_prefill(model):
    """Run `model`'s SDPA attention as `_gqa_prefill_attention` inside the block (no-op for other
    attention implementations)."""
    config = model.config
    previous = config._attn_implementation
    if previous != "sdpa":
        yield model
        return
    config._attn_implementation = GQA_PREFILL
    try:
        yield model
    finally:
        config._attn_implementation = previous
