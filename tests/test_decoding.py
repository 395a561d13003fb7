import copy

import pytest
import torch
from transformers import DynamicCache, TemperatureLogitsWarper, TopPLogitsWarper

from prismrl.rollout.sampling import SamplingConfig, sample_replies
from prismrl.rollout.decoding import GQA_PREFILL, NucleusWarper, gqa_prefill


def transformers_warped(scores, temperature, top_p):
    return TopPLogitsWarper(top_p)(None, TemperatureLogitsWarper(temperature)(None, scores.clone()))


@pytest.mark.parametrize("scale", [2.0, 5.0, 20.0])
@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.99])
def test_nucleus_keeps_what_transformers_keeps(scale, top_p):
    scores = torch.randn(8, 5000, generator=torch.Generator().manual_seed(int(scale * 100 + top_p * 10))) * scale
    expected = transformers_warped(scores, 0.7, top_p)
    got = NucleusWarper(0.7, top_p, candidates=256)(None, scores.clone())
    assert torch.equal(torch.isfinite(got), torch.isfinite(expected))
    kept = torch.isfinite(expected)
    assert torch.allclose(got[kept], expected[kept])


def test_nucleus_falls_back_to_the_full_sort_when_candidates_miss_top_p():
    scores = torch.randn(4, 3000, generator=torch.Generator().manual_seed(1)) * 0.5  # flat: the nucleus is most of the vocabulary
    got = NucleusWarper(1.0, 0.9, candidates=64)(None, scores.clone())
    expected = transformers_warped(scores, 1.0, 0.9)
    assert torch.isfinite(got).sum(-1).gt(64).all()
    # the cumulative sums run in opposite orders, so a token exactly on the boundary may differ
    assert (torch.isfinite(got) != torch.isfinite(expected)).sum() <= 2


def test_nucleus_always_keeps_the_top_token_and_top_p_one_only_scales():
    scores = torch.tensor([[10.0, 0.0, -1.0]])
    assert torch.isfinite(NucleusWarper(1.0, 0.01)(None, scores)).tolist() == [[True, False, False]]
    assert torch.equal(NucleusWarper(2.0, 1.0)(None, scores), scores / 2.0)
    with pytest.raises(ValueError, match="top_p"):
        NucleusWarper(1.0, 0.0)


def test_gqa_prefill_gives_the_same_logits_over_a_padded_cache(tiny):
    model, _ = tiny
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # grouped-query attention
    ids = torch.randint(3, 400, (3, 30), generator=torch.Generator().manual_seed(0))
    attention = torch.ones_like(ids)
    attention[0, :6] = 0  # left padding, as the rollouts batch
    fed = torch.randint(3, 400, (3, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.cat([attention, torch.ones_like(fed)], dim=1)
    with torch.no_grad():
        cache = DynamicCache()
        model(input_ids=ids, attention_mask=attention, cache=cache, use_cache=True)
        plain = model(input_ids=fed, attention_mask=mask, cache=copy.deepcopy(cache)).logits
        with gqa_prefill(model):
            assert model.config._attn_implementation == GQA_PREFILL
            grouped = model(input_ids=fed, attention_mask=mask, cache=copy.deepcopy(cache)).logits
            whole = model(input_ids=ids, attention_mask=attention).logits
        assert model.config._attn_implementation == "sdpa"
        assert torch.allclose(grouped, plain, atol=1e-6)
        assert torch.allclose(whole, model(input_ids=ids, attention_mask=attention).logits, atol=1e-6)


def test_gqa_prefill_restores_the_attention_after_an_error(tiny):
    model, _ = tiny
    with pytest.raises(RuntimeError), gqa_prefill(model):
        raise RuntimeError("boom")
    assert model.config._attn_implementation == "sdpa"


def test_sampled_generation_is_seeded_and_stays_in_the_nucleus(tiny):
    model, tokenizer = tiny
    config = SamplingConfig(temperature=1.0, top_p=0.5, max_new_tokens=6)
    prompts = [[5, 6, 7, 8], [9, 10]]
    first = sample_replies(model, tokenizer, prompts, config, generator_seed=3)
    assert first == sample_replies(model, tokenizer, prompts, config, generator_seed=3)
    with torch.no_grad():  # the first sampled token of each row lies in its top-p set
        mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # as generate numbers left-padded rows
        logits = model(
            input_ids=torch.tensor([[tokenizer.pad_token_id] * 2 + prompts[1], prompts[0]]), attention_mask=mask, position_ids=positions
        ).logits[:, -1]
    kept = torch.isfinite(transformers_warped(logits, 1.0, 0.5))
    assert kept[0, first[1][0]] and kept[1, first[0][0]]
