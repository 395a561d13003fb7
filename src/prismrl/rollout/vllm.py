"""vLLM as the generator for rollouts and evaluation (`backend: vllm`; `pip install 'prismrl[vllm]'`
on a GPU, `scripts/setup-vllm-cpu.sh` for vLLM's CPU build).

A `prismrl.rollout.sampling.Sampler` (`VLLMEngine.sampler`): token-id prompts in, one token-id reply per prompt out,
ending at (and keeping) EOS, so RL trains on exactly the tokens that were sampled. vLLM's prefix
cache plays the part `prismrl.rollout.kv_cache` plays for transformers: a turn's prompt shares its
history with the previous turn's, and those blocks are not recomputed.

The engine lives in this process (`distributed_executor_backend="external_launcher"`, as TRL's
"colocate" mode does it), so after each GRPO update the policy's weights are handed to vLLM's
in-place `reload_weights` directly; nothing goes over a network. Sampling differs from
transformers' in the random streams, not in the distribution: a seeded run is reproducible with
the same backend only.

Checked against vLLM 0.32 (CPU build) in tests/test_vllm_engine.py (slow, runs where vLLM is
installed); the fast tests check the request shaping against a stand-in for the `vllm` module.
"""

from __future__ import annotations

import os

from prismrl.rollout.sampling import SamplingConfig


class VLLMEngine:
    def __init__(
        self,
        model_path: str,
        *,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.3,
        max_model_len: int | None = None,
        seed: int = 0,
        trust_remote_code: bool = False,
    ):
        try:
            import vllm
        except ImportError:
            raise ImportError(
                "backend: vllm needs vLLM: pip install 'prismrl[vllm]' on a CUDA machine, "
                "scripts/setup-vllm-cpu.sh on CPU; or use backend: transformers"
            ) from None
        # external_launcher keeps the engine in this process; it reads the torch.distributed variables.
        for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29533")):
            os.environ.setdefault(key, value)
        self._vllm = vllm
        self.llm = vllm.LLM(
            model=model_path,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            seed=seed,
            enable_prefix_caching=True,
            distributed_executor_backend="external_launcher",
            trust_remote_code=trust_remote_code,
        )

    def generate(self, tokenizer, prompts: list[list[int]], config: SamplingConfig, generator_seed: int | None = None) -> list[list[int]]:
        eos = tokenizer.eos_token_id
        greedy = config.temperature <= 0
        params = [
            self._vllm.SamplingParams(
                temperature=0.0 if greedy else config.temperature,
                top_p=1.0 if greedy else config.top_p,
                max_tokens=config.max_new_tokens,
                stop_token_ids=[eos],
                detokenize=False,
                # one stream per row, fixed by the turn's seed: a rerun samples the same replies
                seed=None if generator_seed is None else generator_seed * 1009 + row,
            )
            for row in range(len(prompts))
        ]
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in prompts], params, use_tqdm=False)
        replies = []
        for output in outputs:
            completion = output.outputs[0]
            reply = list(completion.token_ids)
            # Some vLLM versions leave the stop token out of token_ids; the contract keeps it.
            if completion.finish_reason == "stop" and (not reply or reply[-1] != eos):
                reply.append(eos)
            replies.append(reply)
        return replies

    def sampler(self, tokenizer, config: SamplingConfig) -> VLLMSampler:
        """This engine as one rollout's `Sampler`."""
        return VLLMSampler(self, tokenizer, config)

    def load_weights(self, model) -> None:
        """Copy the policy's current weights into the engine (after each RL update)."""
        weights = [(name, parameter.detach()) for name, parameter in model.named_parameters()]
        # reload_weights, not the model's own load_weights: after loading, vLLM may repack weights
        # into a kernel format (its CPU backend does), and only reload_weights redoes that step.
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights, "is_checkpoint_format": True})
        if getattr(model.config, "tie_word_embeddings", False):
            self.llm.apply_model(_tie_output_to_input_embedding)
        self.llm.reset_prefix_cache()  # cached blocks hold keys/values of the old weights


class VLLMSampler:
    """A rollout's `Sampler` on a `VLLMEngine`: vLLM's prefix cache keeps nothing per episode that
    a sliding window would invalidate for good, so prompts slide as on the plain path."""

    keeps_cache = False

    def __init__(self, engine: VLLMEngine, tokenizer, config: SamplingConfig):
        self.engine, self.tokenizer, self.config = engine, tokenizer, config

    def sample(self, indices: list[int], prompts: list[list[int]], seed: int | None = None) -> list[list[int]]:
        return self.engine.generate(self.tokenizer, prompts, self.config, seed)

    def drop(self, index: int) -> None:
        pass


def _tie_output_to_input_embedding(model) -> None:
    # vLLM's in-place reload refills embed_tokens with a new tensor and puts the old one back into
    # the tied lm_head (a documented limitation of vllm.model_executor.model_loader.reload), so a
    # tied model would keep sampling through its first output embedding. The head's quant method
    # then re-derives what it computes from the weight (vLLM's CPU backend keeps a packed copy).
    head = model.lm_head
    head.weight = model.model.embed_tokens.weight
    head.quant_method.process_weights_after_loading(head)
