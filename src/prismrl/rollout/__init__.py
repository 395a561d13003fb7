"""Rollouts: an LLM agent playing a batch of episodes in an environment pool.

`agent` the loop (`rollout`, `Episode`, `Turn`) · `history` each turn's prompt, fitted to the
window and token budget · `sampling` the settings and the plain sampler · `kv_cache` the sampler
that keeps each episode's keys/values · `vllm` the vLLM sampler · `decoding` two CPU speed-ups
of transformers' sampling loop.
"""

from prismrl.rollout.agent import Episode, Turn, rollout
from prismrl.rollout.sampling import SamplingConfig

__all__ = ["Episode", "SamplingConfig", "Turn", "rollout"]
