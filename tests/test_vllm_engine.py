"""The vLLM backend's adapter: requests shaped as vLLM wants them, replies as agent.generate gives
them, weights pushed after an update. vLLM itself needs a CUDA machine, so a stand-in module with
vLLM's call signatures (LLM.generate, SamplingParams, outputs[0].token_ids / finish_reason) takes
its place here; the real engine is exercised only where a GPU is (docs/PERFORMANCE.md)."""

import sys
import types
from dataclasses import dataclass

import pytest

from prismrl.agent import SamplingConfig, rollout
from prismrl.envs.pool import EnvPool
from prismrl.models import load_model, load_tokenizer, model_folder


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
        self.kwargs, self.requests, self.loaded, self.resets = kwargs, [], [], 0
        self.llm_engine = types.SimpleNamespace(model_executor=types.SimpleNamespace(driver_worker=types.SimpleNamespace(
            model_runner=types.SimpleNamespace(model=types.SimpleNamespace(load_weights=self.loaded.extend)))))

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
    from prismrl.vllm_engine import VLLMEngine

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match=r"prismrl\[vllm\]"):
        VLLMEngine("some/model")


def test_in_memory_models_have_no_folder_for_vllm():
    with pytest.raises(ValueError, match="no folder"):
        model_folder("tiny:0")


@pytest.mark.parametrize("keep_stop_token", [True, False])
def test_requests_and_replies_follow_the_generate_contract(fake_vllm, keep_stop_token, monkeypatch):
    from prismrl.vllm_engine import VLLMEngine

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


def test_weights_are_pushed_and_the_prefix_cache_dropped(fake_vllm):
    from prismrl.vllm_engine import VLLMEngine

    model, _, _ = load_model("tiny:0", device="cpu")
    engine = VLLMEngine("org/model")
    engine.load_weights(model)
    assert [name for name, _ in engine.llm.loaded] == [name for name, _ in model.named_parameters()]
    assert engine.llm.resets == 1


def test_rollout_generates_through_the_engine(fake_vllm, monkeypatch):
    from prismrl.vllm_engine import VLLMEngine

    tokenizer = load_tokenizer("tiny")
    reply = tokenizer("Action: open left", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    monkeypatch.setattr(_LLM, "reply", reply)
    engine = VLLMEngine("org/model")
    with EnvPool("bandit", {}, 0) as pool:
        episodes = rollout(None, tokenizer, pool, "bandit", ["bandit-0", "bandit-1"], SamplingConfig(max_turns=3),
                           seed=0, engine=engine)
    assert [e.won for e in episodes] == [True, True]
    assert episodes[0].turns[0].response_ids == reply and episodes[0].turns[0].action == "open left"
