import json

import pytest
import torch
from conftest import make_trajectory

from prismrl.data.format import encode
from prismrl.fileio import read_jsonl_prefix
from prismrl.prism.probe import GradientProbe, sft_loss
from prismrl.prism.runner import ProbeMismatch, run_probe
from prismrl.prism.units import NoUnitsFound, find_units


def reference_norms(model, groups, input_ids, labels):
    """Brute force: torch.autograd.grad of the same loss w.r.t. every unit weight."""
    weights = [g.parameter for g in groups]
    loss = sft_loss(model(input_ids=torch.tensor([input_ids])).logits, torch.tensor([labels]))
    grads = torch.autograd.grad(loss, weights)
    return loss.item(), [n.item() for g, grad in zip(groups, grads) for n in g.norms(grad)]


def test_llama_units_are_q_k_v_o_gate_up_down_per_layer(tiny):
    model, _ = tiny
    units = [u for g in find_units(model) for u in g.units]
    assert [u.name for u in units[:7]] == [
        f"model.layers.0.{m}"
        for m in (
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        )
    ]
    assert len(units) == 7 * model.config.num_hidden_layers


def test_norms_equal_autograd_reference(tiny):
    model, tokenizer = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    requires_grad = {k: p.requires_grad for k, p in model.named_parameters()}
    probe = GradientProbe(model)
    for index in range(3):
        encoded = encode(make_trajectory(index, turns=3), tokenizer)
        with probe:
            loss, norms = probe(encoded.input_ids, encoded.labels)
        ref_loss, ref_norms = reference_norms(model, probe.groups, encoded.input_ids, encoded.labels)
        assert loss == pytest.approx(ref_loss, rel=1e-6)
        torch.testing.assert_close(torch.tensor(norms), torch.tensor(ref_norms), rtol=1e-5, atol=0)
    # frozen: weights, requires_grad and .grad untouched
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert {k: p.requires_grad for k, p in model.named_parameters()} == requires_grad
    assert all(p.grad is None for p in model.parameters())


def test_gpt2_fused_projections_are_split_into_q_k_v():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=2, n_head=2, n_positions=64)).eval()
    groups = find_units(model)
    units = [u for g in groups for u in g.units]
    assert [u.kind for u in units] == ["q", "k", "v", "o", "up", "down"] * 2
    assert units[0].name == "transformer.h.0.attn.c_attn[q]" and units[0].numel == 16 * 16
    ids = list(range(1, 20))
    labels = [-100] * 10 + ids[10:]
    with GradientProbe(model) as probe:
        _, norms = probe(ids, labels)
    _, ref = reference_norms(model, groups, ids, labels)
    torch.testing.assert_close(torch.tensor(norms), torch.tensor(ref), rtol=1e-5, atol=0)


def test_no_units_is_a_clear_error():
    with pytest.raises(NoUnitsFound, match="no q/k/v/o/gate/up/down"):
        find_units(torch.nn.Sequential(torch.nn.Linear(4, 4)))


def test_resume_after_interruption_gives_the_clean_result(tiny, tmp_path, trajectories):
    model, tokenizer = tiny
    clean = tmp_path / "clean"
    run_probe(model, tokenizer, trajectories, clean, "tiny:0", max_length=256, progress=False)

    resumed = tmp_path / "resumed"
    run_probe(model, tokenizer, trajectories[:5], resumed, "tiny:0", max_length=256, progress=False)
    # A crash mid-write leaves a torn last line.
    with (resumed / "probe.jsonl").open("a") as f:
        f.write('{"id": "t005", "task_id": "task-5", "norms": [0.1, 0.')
    summary = run_probe(model, tokenizer, trajectories, resumed, "tiny:0", max_length=256, progress=False)
    assert summary.n_resumed == 5 and summary.n_probed == len(trajectories) - 5
    assert (resumed / "probe.jsonl").read_text() == (clean / "probe.jsonl").read_text()
    meta = json.loads((resumed / "probe_meta.json").read_text())
    assert meta["model"] == "tiny:0" and len(meta["unit_names"]) == 14 and meta["max_length"] == 256
    assert set(meta) >= {"unit_names", "dtype", "chat_template_sha256", "prismrl_version", "created"}


def test_resume_refuses_different_settings(tiny, tmp_path, trajectories):
    model, tokenizer = tiny
    run_probe(model, tokenizer, trajectories[:2], tmp_path, "tiny:0", max_length=256, progress=False)
    with pytest.raises(ProbeMismatch, match="max_length"):
        run_probe(model, tokenizer, trajectories, tmp_path, "tiny:0", max_length=128, progress=False)


def test_non_finite_and_too_long_are_flagged_not_routed(tiny, tmp_path):
    model, tokenizer = tiny
    trajectories = [make_trajectory(i) for i in range(3)] + [make_trajectory(50, turns=1)]
    trajectories[3].messages[-1]["content"] = "Thought: " + "apple " * 400 + "\nAction: go"
    original = model.model.layers[1].mlp.down_proj.weight.data.clone()
    try:
        summary = run_probe(model, tokenizer, trajectories[3:], tmp_path / "long", "tiny:0", max_length=128, progress=False)
        assert "t050" in summary.flagged and "raise --max-length" in summary.flagged["t050"]
        model.model.layers[1].mlp.down_proj.weight.data[0, 0] = float("inf")
        summary = run_probe(model, tokenizer, trajectories[:3], tmp_path / "nan", "tiny:0", max_length=256, progress=False)
    finally:
        model.model.layers[1].mlp.down_proj.weight.data.copy_(original)
    assert set(summary.flagged) == {"t000", "t001", "t002"}
    records = read_jsonl_prefix(tmp_path / "nan" / "probe.jsonl")
    assert all(r["norms"] is None and "non-finite" in r["flag"] for r in records)


@pytest.mark.parametrize("family", ["qwen2", "mistral", "phi3"])
def test_other_families_match_the_reference(family):
    from transformers import MistralConfig, MistralForCausalLM, Phi3Config, Phi3ForCausalLM, Qwen2Config, Qwen2ForCausalLM

    size = dict(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    model = {
        "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(**size)),
        "mistral": lambda: MistralForCausalLM(MistralConfig(**size)),
        "phi3": lambda: Phi3ForCausalLM(Phi3Config(**size, pad_token_id=0)),
    }[family]().eval()
    groups = find_units(model)
    units = [u for g in groups for u in g.units]
    assert [u.kind for u in units] == ["q", "k", "v", "o", "gate", "up", "down"] * 2
    if family == "phi3":  # fused: q 32 rows, k and v 16 rows each (2 kv heads × 8), gate/up halves of 96
        assert [u.numel for u in units[:3]] == [32 * 32, 16 * 32, 16 * 32] and units[4].name.endswith("gate_up_proj[gate]")
    ids = list(range(3, 30))
    labels = [-100] * 12 + ids[12:]
    with GradientProbe(model) as probe:
        _, norms = probe(ids, labels)
    _, ref = reference_norms(model, groups, ids, labels)
    torch.testing.assert_close(torch.tensor(norms), torch.tensor(ref), rtol=1e-5, atol=0)
