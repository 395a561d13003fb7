"""The batched exact probe equals the batch-1 probe; resume, flags and multi-process runs."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import make_trajectory, write_jsonl
from typer.testing import CliRunner

from prismrl.cli import app
from prismrl.data.format import encode
from prismrl.fileio import read_jsonl_prefix
from prismrl.prism.batched import BatchedProbe, plan_batches
from prismrl.prism.probe import GradientProbe
from prismrl.prism.runner import run_probe


def varied(n=8, seed=0):
    """Trajectories of 1-4 agent turns: 76-292 tokens with the tiny tokenizer, so batches pad."""
    return [make_trajectory(i, turns=1 + i % 4, seed=seed) for i in range(n)]


def batch1(model, pairs):
    with GradientProbe(model) as probe:
        return [probe(ids, labels) for ids, labels in pairs]


def assert_same(results, reference):
    assert len(results) == len(reference)
    for (loss, norms), (ref_loss, ref_norms) in zip(results, reference):
        assert loss == pytest.approx(ref_loss, rel=1e-5)
        torch.testing.assert_close(torch.tensor(norms), torch.tensor(ref_norms), rtol=1e-4, atol=0)


@pytest.fixture(scope="module")
def gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    # Dropout on in the config: the probe must run the model in eval mode.
    return GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=24, n_layer=2, n_head=2, n_positions=128))


def test_batched_equals_batch1_with_padding_on_tiny_llama(tiny):
    model, tokenizer = tiny
    encoded = [encode(t, tokenizer) for t in varied()]
    pairs = [(e.input_ids, e.labels) for e in encoded]
    assert len({len(ids) for ids, _ in pairs}) > 3  # really padded
    reference = batch1(model, pairs)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    requires_grad = {k: p.requires_grad for k, p in model.named_parameters()}
    for method in ("einsum", "gram"):
        with BatchedProbe(model, norm_method=method) as probe:
            assert all(not p.requires_grad for p in model.parameters())  # frozen: no weight gradient is formed
            results = probe(pairs[:5]) + probe(pairs[5:])
            assert probe.methods_used[method] == 2 * len(probe.groups) and sum(probe.methods_used.values()) == 2 * len(probe.groups)
        assert_same(results, reference)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert {k: p.requires_grad for k, p in model.named_parameters()} == requires_grad
    assert all(p.grad is None for p in model.parameters())


def test_auto_picks_the_cheaper_identity_per_layer(tiny):
    model, _ = tiny
    probe = BatchedProbe(model)
    # q: in 32, out 32, shared by q/k/v → Gram below T = 32·32 / (2·(32 + 32/3)) ≈ 12
    assert probe.method_for(0, 8, readers=3) == "gram"
    assert probe.method_for(0, 64, readers=3) == "einsum"
    pair = ([1, 87, 366, 201, 343, 2, 201, 81], [-100] * 5 + [2, 201, 81])
    with BatchedProbe(model) as auto:
        results = auto([pair])
    # At T = 8: Gram for q, k, v, gate, up, down; einsum for o (a tie goes to einsum).
    assert auto.methods_used == {"gram": 12, "einsum": 2}
    assert_same(results, batch1(model, [pair]))


def test_gpt2_fused_qkv_batched(gpt2):
    rows = [list(range(1, 1 + n)) for n in (19, 31, 12, 40)]
    pairs = [(ids, [-100] * (len(ids) // 2) + ids[len(ids) // 2 :]) for ids in rows]
    reference = batch1(gpt2, pairs)
    for method in ("einsum", "gram"):
        with BatchedProbe(gpt2, norm_method=method) as probe:
            assert_same(probe(pairs), reference)
            assert [u.name for u in probe.units][:3] == [f"transformer.h.0.attn.c_attn[{k}]" for k in "qkv"]
    assert gpt2.training  # restored


def test_gradient_checkpointing_recomputes_layers_and_gives_the_same_norms(tiny, gpt2):
    model, tokenizer = tiny
    pairs = [(e.input_ids, e.labels) for e in (encode(t, tokenizer) for t in varied(4, seed=1))]
    calls = []
    handle = model.model.layers[0].mlp.register_forward_hook(lambda *a: calls.append(torch.is_grad_enabled()))
    try:
        with BatchedProbe(model, gradient_checkpointing=True) as probe:
            results = probe(pairs)
    finally:
        handle.remove()
    assert calls == [False, True]  # first pass without grad, recomputed in the backward
    assert_same(results, batch1(model, pairs))
    assert "forward" not in vars(model.model.layers[0])  # unwrapped on exit
    gpt_pairs = [(list(range(1, n)), list(range(1, n))) for n in (9, 30)]
    with BatchedProbe(gpt2, gradient_checkpointing=True, norm_method="gram") as probe:
        assert_same(probe(gpt_pairs), batch1(gpt2, gpt_pairs))


def test_plan_batches_sorts_within_windows_under_a_token_budget():
    lengths = [100, 300, None, 120, 280, 90, 310, 95]
    assert plan_batches(lengths, None) == [[0], [1], [3], [4], [5], [6], [7]]
    batches = plan_batches(lengths, 600, window=8)
    assert batches == [[6], [1, 4], [3, 0, 7, 5]]
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 600 or len(batch) == 1
    assert plan_batches(lengths, 600, window=4) == [[1, 3], [0], [6], [4, 7], [5]]
    assert plan_batches(lengths, 10_000, window=8, max_batch_size=3) == [[6, 1, 4], [3, 0, 7], [5]]


def test_run_probe_batched_matches_reference_and_resumes(tiny, tmp_path):
    model, tokenizer = tiny
    trajectories = varied(12)
    run_probe(model, tokenizer, trajectories, tmp_path / "ref", "tiny:0", max_length=256, progress=False)
    clean = tmp_path / "clean"
    summary = run_probe(model, tokenizer, trajectories, clean, "tiny:0", max_length=256, progress=False, batch_tokens=700, window=5)
    assert summary.n_probed == 12
    ref, got = read_jsonl_prefix(tmp_path / "ref" / "probe.jsonl"), read_jsonl_prefix(clean / "probe.jsonl")
    assert [r["id"] for r in got] == [t.id for t in trajectories]  # input order
    for a, b in zip(got, ref):
        assert {k: v for k, v in a.items() if k not in ("loss", "norms")} == {k: v for k, v in b.items() if k not in ("loss", "norms")}
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        torch.testing.assert_close(torch.tensor(a["norms"]), torch.tensor(b["norms"]), rtol=1e-4, atol=0)
    assert json.loads((clean / "probe_meta.json").read_text())["batch_tokens"] == 700

    # Interrupted in the second window, in the middle of writing a record.
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    lines = (clean / "probe.jsonl").read_text().splitlines(keepends=True)
    (resumed / "probe.jsonl").write_text("".join(lines[:6]) + lines[6][:40])
    (resumed / "probe_meta.json").write_text((clean / "probe_meta.json").read_text())
    summary = run_probe(model, tokenizer, trajectories, resumed, "tiny:0", max_length=256, progress=False, batch_tokens=700, window=5)
    assert summary.n_resumed == 6 and summary.n_probed == 6
    # Same windows, same batches: the very same bytes as the uninterrupted run.
    assert (resumed / "probe.jsonl").read_text() == (clean / "probe.jsonl").read_text()


def test_batched_flags_unencodable_and_non_finite_per_trajectory(tiny, tmp_path):
    model, tokenizer = tiny
    trajectories = varied(4) + [make_trajectory(50, turns=1)]
    trajectories[4].messages[-1]["content"] = "Thought: " + "apple " * 400 + "\nAction: go"
    summary = run_probe(model, tokenizer, trajectories, tmp_path / "long", "tiny:0", max_length=200, progress=False, batch_tokens=1000)
    assert set(summary.flagged) == {"t050"} and "raise --max-length" in summary.flagged["t050"]
    assert [r["id"] for r in read_jsonl_prefix(tmp_path / "long" / "probe.jsonl")] == [t.id for t in trajectories]
    weight = model.model.layers[1].mlp.down_proj.weight
    original = weight.data.clone()
    try:
        weight.data[0, 0] = float("inf")
        summary = run_probe(
            model, tokenizer, trajectories[:3], tmp_path / "nan", "tiny:0", max_length=256, progress=False, batch_tokens=1000
        )
    finally:
        weight.data.copy_(original)
    assert set(summary.flagged) == {"t000", "t001", "t002"}
    assert all(r["norms"] is None and "non-finite" in r["flag"] for r in read_jsonl_prefix(tmp_path / "nan" / "probe.jsonl"))


def test_cli_flags_reach_the_probe(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", [t.to_dict() for t in varied(6)])
    out = tmp_path / "probe"
    result = CliRunner().invoke(
        app,
        [
            "probe",
            "--data",
            str(data),
            "--out",
            str(out),
            "--model",
            "tiny",
            "--max-length",
            "256",
            "--batch-tokens",
            "600",
            "--gradient-checkpointing",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(read_jsonl_prefix(out / "probe.jsonl")) == 6
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["batch_tokens"] == 600 and config["gradient_checkpointing"] is True
    meta = json.loads((out / "probe_meta.json").read_text())
    assert meta["batch_tokens"] == 600 and meta["gradient_checkpointing"] is True and meta["world_size"] == 1


# Each launch starts two fresh interpreters (~15 s here); the batch-1 variant runs with -m slow.
@pytest.mark.parametrize("batch_tokens", [600, pytest.param(None, marks=pytest.mark.slow)])
def test_two_processes_give_the_single_process_file(tmp_path, batch_tokens):
    data = write_jsonl(tmp_path / "data.jsonl", [t.to_dict() for t in varied(10)])
    flags = ["--model", "tiny", "--max-length", "256"] + (["--batch-tokens", str(batch_tokens)] if batch_tokens else [])
    single = tmp_path / "single"
    result = CliRunner().invoke(app, ["probe", "--data", str(data), "--out", str(single), *flags])
    assert result.exit_code == 0, result.output
    multi = tmp_path / "multi"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "prismrl.cli",
            "probe",
            "--data",
            str(data),
            "--out",
            str(multi),
            *flags,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "probed 10 (resumed 0) of 10" in run.stdout
    assert (multi / "probe.jsonl").read_bytes() == (single / "probe.jsonl").read_bytes()
    assert not list(multi.glob("probe.rank*.jsonl"))  # merged and removed
    assert json.loads((multi / "probe_meta.json").read_text())["world_size"] == 2
