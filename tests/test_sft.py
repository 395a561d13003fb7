"""SFT after routing: TRL trains on exactly the formatter's mask, learns, saves, resumes."""

import json
import os

import pytest
import torch
from conftest import make_trajectory
from transformers import AutoModelForCausalLM, TrainerCallback

from prismrl.data.format import IGNORE_INDEX, encode
from prismrl.data.io import load_trajectories, save_trajectories
from prismrl.data.schema import Trajectory
from prismrl.models import load_model
from prismrl.prism.probe import sft_loss
from prismrl.train.sft import (
    SFTTrainConfig,
    build_trainer,
    encode_all,
    heldout_loss,
    score_labelled_positions_only,
    to_dataset,
    train_sft,
    uses_checkpointing,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    train = root / "train.jsonl"
    held = root / "heldout.jsonl"
    save_trajectories([make_trajectory(i, turns=2 + i % 3) for i in range(16)], train)
    save_trajectories([make_trajectory(100 + i, turns=2 + i % 3) for i in range(8)], held)
    return train, held


def _state(folder):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_trl_loss_mask_is_the_formatters(tmp_path):
    model, tokenizer = load_model("tiny:0", device="cpu")[:2]
    trajectories = [make_trajectory(i, turns=2 + i % 3) for i in range(6)]
    encoded = encode_all(trajectories, tokenizer, max_length=512)
    assert len(encoded.encoded) == 6
    cfg = SFTTrainConfig(model="tiny", device="cpu", data="unused", out=str(tmp_path / "out"), batch_size=3)
    trainer = build_trainer(cfg, model, tokenizer, to_dataset(encoded))

    # TRL's prepared dataset keeps our labels verbatim.
    assert trainer.train_dataset["input_ids"] == [e.input_ids for e in encoded.encoded]
    assert trainer.train_dataset["labels"] == [e.labels for e in encoded.encoded]

    # Spy on the forward TRL's loss calls (its fused LM head), to see the mask it really scores.
    captured = []
    fused_forward = trainer.model.forward

    def spy(*args, **kwargs):
        outputs = fused_forward(*args, **kwargs)
        captured.append((kwargs.get("fused_lm_head"), outputs))
        return outputs

    trainer.model.forward = spy
    by_ids = {tuple(e.input_ids): e for e in encoded.encoded}
    seen = 0
    for batch in trainer.get_train_dataloader():
        captured.clear()
        with torch.no_grad():
            loss = trainer.compute_loss(trainer.model, dict(batch))
        [(fused, outputs)] = captured
        assert fused
        expected_mask, total, count = [], 0.0, 0
        for row in range(batch["input_ids"].shape[0]):
            n = int(batch["attention_mask"][row].sum())
            e = by_ids[tuple(batch["input_ids"][row, :n].tolist())]
            padded = e.labels + [IGNORE_INDEX] * (batch["labels"].shape[1] - n)
            assert batch["labels"][row].tolist() == padded  # the collator keeps our labels, pads with -100
            expected_mask.append([label != IGNORE_INDEX for label in padded[1:]])
            # The probe's loss on this one trajectory, token-weighted.
            with torch.no_grad():
                logits = fused_forward(input_ids=torch.tensor([e.input_ids])).logits
            total += sft_loss(logits, torch.tensor([e.labels])).item() * e.n_response_tokens
            count += e.n_response_tokens
            seen += 1
        # The per-token mask TRL's loss used is exactly the formatter's response mask...
        assert outputs.label_mask.tolist() == expected_mask
        assert 0 < outputs.label_mask.sum() < outputs.label_mask.numel()
        # ...and its loss equals the probe's SFT loss on the same tokens.
        assert loss.item() == pytest.approx(total / count, rel=1e-5)
    assert seen == 6


def test_labelled_positions_only_head_equals_trls(tmp_path):
    """The CPU head that projects only labelled positions gives TRL's fused-head outputs, loss and
    gradients (TRL scores every position off Triton)."""
    from trl.trainer.utils import add_fused_lm_head

    tokenizer = load_model("tiny:0", device="cpu")[1]
    encoded = encode_all([make_trajectory(i, turns=2 + i) for i in range(2)], tokenizer, max_length=512).encoded
    width = max(e.n_tokens for e in encoded)
    ids = torch.tensor([e.input_ids + [tokenizer.pad_token_id] * (width - e.n_tokens) for e in encoded])
    attention = torch.tensor([[1] * e.n_tokens + [0] * (width - e.n_tokens) for e in encoded])
    labels = torch.tensor([e.labels + [IGNORE_INDEX] * (width - e.n_tokens) for e in encoded])
    results = []
    for compact in (False, True):
        model = load_model("tiny:0", device="cpu")[0]
        add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
        if compact:
            score_labelled_positions_only(model)
        out = model(input_ids=ids, attention_mask=attention, labels=labels, fused_lm_head=True, num_items_in_batch=7)
        out.loss.backward()
        results.append((out, {n: p.grad.clone() for n, p in model.named_parameters()}))
    (trl, trl_grads), (ours, our_grads) = results
    assert ours.label_mask.tolist() == trl.label_mask.tolist()
    for field in ("loss", "log_probs", "entropy"):
        torch.testing.assert_close(getattr(ours, field), getattr(trl, field), rtol=1e-5, atol=1e-6)
    assert ours.is_top1.tolist() == trl.is_top1.tolist()
    for name, grad in trl_grads.items():
        torch.testing.assert_close(our_grads[name], grad, rtol=1e-4, atol=1e-7)


def test_gradient_checkpointing_by_default_only_for_large_micro_batches():
    def cfg(**kw):
        return SFTTrainConfig(data="d", **kw)

    assert not uses_checkpointing(cfg(batch_size=1, max_length=3072))  # the small WebShop config: 6.3 GB without
    assert uses_checkpointing(cfg(batch_size=4, max_length=2048))  # 18.1 GB without, 6.1 GB with
    assert not uses_checkpointing(cfg(batch_size=4, max_length=2048, gradient_checkpointing=False))  # explicit wins
    assert uses_checkpointing(cfg(batch_size=1, max_length=512, gradient_checkpointing=True))


def test_sft_learns_the_template(files, tmp_path, capsys):
    train, held = files
    heldout, _ = load_trajectories(held)
    out = tmp_path / "out"
    beats = []

    class ReadHeartbeat(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            beats.append(json.loads((out / ".sft.running.json").read_text()))

    summary = train_sft(
        SFTTrainConfig(
            model="tiny",
            device="cpu",
            data=str(train),
            eval_data=str(held),
            out=str(out),
            max_length=512,
            epochs=6,
            lr=1e-2,
            batch_size=4,
            save_steps=1000,
            logging_steps=4,
            seed=0,
        ),
        callbacks=[ReadHeartbeat()],
    )
    # While it trains, a heartbeat says which step it is at (a SIGKILL leaves it for the next run to report).
    assert beats[-1]["step"] == "step 24 of 24" and beats[-1]["pid"] == os.getpid() and beats[-1]["peak_rss_gb"] > 0
    assert not (out / ".sft.running.json").exists()
    assert summary["n_examples"] == 16 and summary["n_skipped"] == 0 and summary["steps"] == 24
    before, after = summary["eval_loss_before"], summary["eval_loss_after"]
    assert after < 0.8 * before, (before, after)
    assert summary["train_loss"] < summary["train_loss_first"]
    # The saved final model is a plain HF folder that the project's loader reads, with the same loss.
    model, tokenizer, _ = load_model(str(out / "final"), device="cpu")
    assert heldout_loss(model, tokenizer, heldout, 512) == pytest.approx(after, rel=1e-5)
    base, base_tokenizer, _ = load_model("tiny:0", device="cpu")
    assert heldout_loss(base, base_tokenizer, heldout, 512) == pytest.approx(before, rel=1e-5)
    # Checkpoint at the end, metrics written one line per log, summary on disk.
    assert (out / "checkpoint-24").is_dir()
    metrics = [json.loads(line) for line in (out / "sft_metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in metrics if "loss" in r] == [4, 8, 12, 16, 20, 24]
    assert metrics[0]["eval_loss_before"] == before and metrics[-1]["eval_loss_after"] == after
    assert json.loads((out / "sft_summary.json").read_text())["eval_loss_after"] == after
    # stderr is not a terminal here: plain step lines instead of tqdm's redraws.
    log = capsys.readouterr().err
    assert "sft step 24/24 (100%)" in log and "it/s" not in log and "\r" not in log


def test_lora_trains_and_saves_a_merged_model(files, tmp_path):
    from peft import PeftModel

    train, held = files
    out = tmp_path / "out"
    summary = train_sft(
        SFTTrainConfig(
            model="tiny",
            device="cpu",
            data=str(train),
            eval_data=str(held),
            out=str(out),
            max_length=512,
            max_steps=6,
            lr=2e-2,
            batch_size=4,
            save_steps=3,
            logging_steps=2,
            lora=True,
            lora_r=4,
            lora_alpha=8,
            lora_dropout=0.0,
        )
    )
    assert summary["eval_loss_after"] < summary["eval_loss_before"]
    assert (out / "adapter" / "adapter_config.json").exists() and (out / "checkpoint-6").is_dir()
    merged = _state(out / "final")
    assert not any("lora" in k for k in merged)
    base, tokenizer, _ = load_model("tiny:0", device="cpu")
    changed = [k for k, v in base.state_dict().items() if not torch.equal(v, merged[k])]
    assert changed and all(
        any(t in k for t in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")) for k in changed
    )
    # Base + adapter gives the same outputs as the merged model.
    final = AutoModelForCausalLM.from_pretrained(out / "final", dtype=torch.float32)
    with_adapter = PeftModel.from_pretrained(base, out / "adapter")
    ids = torch.tensor([encode(make_trajectory(200), tokenizer, 512).input_ids])
    with torch.no_grad():
        torch.testing.assert_close(final(ids).logits, with_adapter(ids).logits, rtol=1e-4, atol=1e-4)


class Crash(RuntimeError):
    pass


class CrashAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Crash(f"simulated crash after step {self.step}")


def test_resume_matches_an_uninterrupted_run(files, tmp_path):
    train, _ = files
    common = dict(
        model="tiny", device="cpu", data=str(train), max_length=512, epochs=2, lr=1e-2, batch_size=4, save_steps=2, logging_steps=1, seed=3
    )
    whole = train_sft(SFTTrainConfig(out=str(tmp_path / "whole"), **common))

    broken = tmp_path / "broken"
    with pytest.raises(Crash):
        train_sft(SFTTrainConfig(out=str(broken), **common), callbacks=[CrashAt(5)])
    assert (broken / "checkpoint-4").is_dir() and not (broken / "final").exists()
    with pytest.raises(FileExistsError):  # never silently restart over an existing run
        train_sft(SFTTrainConfig(out=str(broken), **common))
    resumed = train_sft(SFTTrainConfig(out=str(broken), resume=True, **common))

    assert resumed["resumed_from"].endswith("checkpoint-4")
    assert whole["steps"] == resumed["steps"] == 8
    # Restored optimizer, scheduler, RNG and data order: bit-identical weights on CPU.
    a, b = _state(tmp_path / "whole" / "final"), _state(broken / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The log has each step once: lines the crashed run wrote after its checkpoint were dropped.
    records = [json.loads(line) for line in (broken / "sft_metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "loss" in r]
    assert steps == list(range(1, 9))
    assert resumed["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-6)


def test_untrainable_trajectory_is_skipped_and_listed(tmp_path):
    long_task = {"role": "user", "content": "Your task is to: " + " ".join(["open the drawer"] * 200)}
    too_long = Trajectory(
        id="too-long",
        task_id="x",
        env="toy",
        messages=[{"role": "system", "content": "You are an agent."}, long_task, {"role": "assistant", "content": "Action: look"}],
    )
    many = make_trajectory(50, turns=12)
    trajectories = [make_trajectory(i) for i in range(3)] + [too_long, many]
    data = tmp_path / "data.jsonl"
    save_trajectories(trajectories, data)
    out = tmp_path / "out"
    max_length = 300
    _, tokenizer, _ = load_model("tiny:0", device="cpu")
    assert encode(many, tokenizer).n_tokens > max_length  # must lose old turns, but fits then
    summary = train_sft(
        SFTTrainConfig(
            model="tiny", device="cpu", data=str(data), out=str(out), max_length=max_length, max_steps=1, batch_size=2, save_steps=10
        )
    )
    assert summary["n_examples"] == 4 and summary["n_skipped"] == 1 and summary["n_truncated"] == 1
    assert summary["skipped"][0]["id"] == "too-long" and "max-length" in summary["skipped"][0]["reason"]
    assert json.loads((out / "sft_summary.json").read_text())["skipped"][0]["id"] == "too-long"


def test_two_process_ddp_matches_one_process_with_the_global_batch(files, tmp_path):
    """`torchrun --nproc_per_node 2 prism sft` (DDP on gloo): each rank takes every other batch of
    the same seeded order and the loss is averaged over both ranks' tokens, so two ranks of batch
    2 train the weights one process of batch 4 does; only rank 0 writes files."""
    import os
    import subprocess
    import sys

    train, _ = files
    flags = [
        "--model",
        "tiny",
        "--set",
        "max_length=512",
        "--set",
        "max_steps=3",
        "--set",
        "lr=1e-2",
        "--set",
        "logging_steps=1",
        "--set",
        "save_steps=100",
        "--set",
        "device=cpu",
    ]
    single = train_sft(
        SFTTrainConfig(
            model="tiny",
            device="cpu",
            data=str(train),
            out=str(tmp_path / "single"),
            max_length=512,
            max_steps=3,
            lr=1e-2,
            batch_size=4,
            logging_steps=1,
            save_steps=100,
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    multi = tmp_path / "multi"
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
            "sft",
            "--data",
            str(train),
            "--out",
            str(multi),
            "--set",
            "batch_size=2",
            *flags,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("SFT done: 3 steps") == 1  # reported once, by rank 0
    summary = json.loads((multi / "sft_summary.json").read_text())
    assert summary["steps"] == 3 and summary["n_examples"] == 16
    records = [json.loads(line) for line in (multi / "sft_metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
    assert not list(multi.glob(".*partial"))
    a, b = _state(tmp_path / "single" / "final"), _state(multi / "final")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)
    assert summary["train_loss"] == pytest.approx(single["train_loss"], rel=1e-4)


@pytest.mark.parametrize(
    "name,kind",
    [
        ("ddp", "MULTI_GPU"),
        ("fsdp", "FSDP"),
        ("deepspeed-zero3", "DEEPSPEED"),
        ("fsdp-2nodes", "FSDP"),
        ("deepspeed-zero3-2nodes", "DEEPSPEED"),
    ],
)
def test_shipped_accelerate_configs_load_and_save_whole_models(name, kind):
    """The GPU launch configs parse as accelerate reads them, and each one lets final/ be a whole
    model (train_sft saves through Trainer.save_model, which needs these settings to gather shards)."""
    from pathlib import Path

    from accelerate.commands.config.config_args import load_config_from_file

    root = Path(__file__).resolve().parents[1]
    config = load_config_from_file(str(root / "configs" / "accelerate" / f"{name}.yaml"))
    assert config.distributed_type.value == kind
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    if kind == "DEEPSPEED":
        deepspeed = json.loads((root / config.deepspeed_config["deepspeed_config_file"]).read_text())
        assert deepspeed["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
        assert deepspeed["train_micro_batch_size_per_gpu"] == "auto"  # filled from the SFT config
