"""Multi-turn SFT on a trajectory file, loss on every assistant turn and nothing else.

Every trajectory goes through the ONE shared formatter (`prismrl.data.format.encode`), so the
tokens and loss mask SFT trains on are exactly the ones the gradient probe measured. The encoded
`input_ids` + `labels` are handed to TRL's `SFTTrainer` as a pre-tokenized dataset. TRL 1.16
keeps a dataset's own `labels` column as is (`_prepare_dataset`: "A dataset that already provides
a 'labels' column is left as is"), pads it with -100 in its collator, and its fused LM head
scores exactly the positions whose shifted label is not -100; no chat-template masking, EOS
appending, truncation (`max_length=None`) or packing of TRL's own is involved. The test suite
checks that the per-token mask TRL's loss uses equals the formatter's.

Over-long trajectories lose their oldest turns in the formatter; ones it cannot encode at all are
skipped and listed in the summary (`out/sft_summary.json`), never dropped silently.

Outputs under `out/`: `checkpoint-*` (every `save_steps` and at the end; `resume=True` continues
from the latest), `final/` (a plain Hugging Face model + tokenizer; for LoRA the merged model),
`adapter/` (LoRA only), `sft_metrics.jsonl` (one fsynced JSON line per log) and `sft_summary.json`.

Several processes: `accelerate launch [--config_file configs/accelerate/X.yaml] -m prismrl.cli sft
...` or `torchrun --nproc_per_node N -m prismrl.cli sft ...`. The Trainer does the data-parallel
part (DDP, FSDP, DeepSpeed: whatever the launcher configured); this module only keeps every file
to the main process and saves `final/` through `Trainer.save_model`, which gathers sharded
weights (FSDP needs `fsdp_state_dict_type: FULL_STATE_DICT`, ZeRO-3
`stage3_gather_16bit_weights_on_model_save`). See docs/PERFORMANCE.md.
"""

from __future__ import annotations

import functools
import logging
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from prismrl.data.format import DEFAULT_MAX_LENGTH, IGNORE_INDEX, CannotEncode, Encoded, encode
from prismrl.data.io import load_trajectories
from prismrl.data.schema import Trajectory
from prismrl.errors import ConfigError, InputError, OutputExists
from prismrl.fileio import JsonlAppender, atomic_dir, atomic_write_json, atomic_write_jsonl, read_jsonl_prefix, replace_dir
from prismrl.heartbeat import Heartbeat
from prismrl.launch import launched_local_rank, launched_rank
from prismrl.models import BUILTIN_DEFAULT, load_model, resolve_dtype
from prismrl.padding import attention_inputs, attention_mask, padded
from prismrl.progress import PlainProgress, quiet_library_bars

log = logging.getLogger(__name__)

DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
METRICS_FILE = "sft_metrics.jsonl"
SUMMARY_FILE = "sft_summary.json"
CHECKPOINT_ABOVE_TOKENS = 4096


@dataclass
class SFTTrainConfig:
    """Everything one SFT run needs; `asdict` of it is recorded in the summary."""

    model: str = BUILTIN_DEFAULT  # spec for `prismrl.models.load_model`
    data: str = ""  # trajectory file (D_SFT)
    out: str = "runs/sft"
    max_length: int = DEFAULT_MAX_LENGTH  # formatter's context length: over-long trajectories lose oldest turns
    epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides epochs
    lr: float = 1e-5
    lr_scheduler: str = "linear"
    warmup: float = 0.0  # steps, or a ratio of all steps when in [0, 1)
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    batch_size: int = 4
    grad_accum: int = 1
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    save_steps: int = 100
    save_total_limit: int | None = 3  # older checkpoints are deleted; None keeps all (resume needs only the latest)
    seed: int = 0
    dtype: str = "float32"  # compute precision (autocast on CUDA); weights stay float32; CPU: always float32 (models.resolve_dtype)
    device: str | None = None  # None: cuda when available, else cpu
    eval_data: str | None = None  # held-out trajectories → eval loss before/after
    eval_steps: int = 0  # > 0: also evaluate eval_data every eval_steps during training
    resume: bool = False  # continue from the latest checkpoint-* in out
    logging_steps: int = 10
    skip_invalid: bool = False  # invalid records in the data file: error (False) or skip and list (True)
    # None: on when a micro-batch may hold more than CHECKPOINT_ABOVE_TOKENS (batch_size x max_length).
    # Measured (benchmarks/sft_bench.py, SmolLM2): at 4 x 2k tokens it cut the peak from 18.1 to 6.1 GB
    # for 34 % more time; at 1 x 2k it costs 38 % more time for 2.2 GB, which a CPU machine rarely needs.
    gradient_checkpointing: bool | None = None
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.lora_targets, str):
            self.lora_targets = tuple(t.strip() for t in self.lora_targets.split(",") if t.strip())
        else:
            self.lora_targets = tuple(self.lora_targets)
        if not self.data:
            raise ConfigError("SFTTrainConfig.data: give the trajectory file to train on")
        for name in ("max_length", "batch_size", "grad_accum", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SFTTrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        resolve_dtype(self.dtype)  # raises on an unknown name
        if self.max_steps <= 0 and self.epochs <= 0:
            raise ConfigError("SFTTrainConfig: epochs must be > 0 (or set max_steps)")


def uses_checkpointing(cfg: SFTTrainConfig) -> bool:
    if cfg.gradient_checkpointing is not None:
        return cfg.gradient_checkpointing
    return cfg.batch_size * cfg.max_length > CHECKPOINT_ABOVE_TOKENS


# --------------------------------------------------------------------------------------------
# Encoding


@dataclass
class EncodedSet:
    ids: list[str] = field(default_factory=list)
    encoded: list[Encoded] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"id", "where", "reason"}

    @property
    def n_truncated(self) -> int:
        return sum(e.truncated for e in self.encoded)

    @property
    def n_tokens(self) -> int:
        return sum(e.n_tokens for e in self.encoded)

    @property
    def n_response_tokens(self) -> int:
        return sum(e.n_response_tokens for e in self.encoded)


def encode_all(trajectories: list[Trajectory], tokenizer, max_length: int | None, where: str = "") -> EncodedSet:
    """Encode with the shared formatter; what cannot be encoded is listed, not dropped silently."""
    result = EncodedSet()
    for trajectory in trajectories:
        try:
            encoded = encode(trajectory, tokenizer, max_length)
        except CannotEncode as error:
            result.skipped.append({"id": trajectory.id, "where": where, "reason": str(error)})
            continue
        result.ids.append(trajectory.id)
        result.encoded.append(encoded)
    return result


def load_and_encode(path: str, tokenizer, max_length: int, skip_invalid: bool) -> EncodedSet:
    trajectories, invalid = load_trajectories(path, skip_invalid=skip_invalid)
    result = encode_all(trajectories, tokenizer, max_length, where=str(path))
    result.skipped = [s.to_dict() for s in invalid] + result.skipped
    return result


def to_dataset(encoded: EncodedSet):
    """A pre-tokenized `datasets.Dataset` whose `labels` are the formatter's, verbatim."""
    import datasets

    return datasets.Dataset.from_dict({"input_ids": [e.input_ids for e in encoded.encoded], "labels": [e.labels for e in encoded.encoded]})


# --------------------------------------------------------------------------------------------
# Held-out loss


@torch.no_grad()
def encoded_loss_sum(model, encoded: list[Encoded], pad_token_id: int, batch_size: int = 4) -> tuple[float, int]:
    """(sum of next-token cross-entropy over response tokens, number of those tokens)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for start in range(0, len(encoded), batch_size):
            batch = encoded[start : start + batch_size]
            ids = padded([e.input_ids for e in batch], pad_token_id)
            labels = padded([e.labels for e in batch], IGNORE_INDEX)
            mask = attention_mask([e.n_tokens for e in batch])
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            # Same definition as prismrl.prism.probe.sft_loss, summed so batches weigh by tokens.
            shifted = labels[:, 1:].to(device)
            total += F.cross_entropy(
                logits[:, :-1].float().flatten(0, 1), shifted.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
            ).item()
            count += int((shifted != IGNORE_INDEX).sum())
    finally:
        model.train(was_training)
    return total, count


def heldout_loss(model, tokenizer, trajectories: list[Trajectory], max_length: int | None, batch_size: int = 4) -> float:
    """Mean token-level SFT loss over the response tokens of `trajectories` (no grad).

    Trajectories the formatter cannot encode at `max_length` are left out with a warning; NaN
    when none is left."""
    encoded = encode_all(trajectories, tokenizer, max_length)
    for skipped in encoded.skipped:
        log.warning("heldout_loss: skipping %s: %s", skipped["id"], skipped["reason"])
    if not encoded.encoded:
        return float("nan")
    total, count = encoded_loss_sum(model, encoded.encoded, tokenizer.pad_token_id, batch_size)
    return total / count


# --------------------------------------------------------------------------------------------
# Training


def _metrics_callback(path: Path):
    from transformers import TrainerCallback

    class MetricsToJsonl(TrainerCallback):
        """One durable JSON line per Trainer log."""

        def __init__(self) -> None:
            self.appender: JsonlAppender | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            if self.appender is None:
                self.appender = JsonlAppender(path)
            self.appender.write({"step": state.global_step, "epoch": state.epoch, "time": time.time(), **logs})

        def on_train_end(self, args, state, control, **kwargs):
            if self.appender is not None:
                self.appender.close()
                self.appender = None

    return MetricsToJsonl()


def _heartbeat_callback(beat: Heartbeat):
    from transformers import TrainerCallback

    class BeatEveryStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            beat(step=f"step {state.global_step} of {state.max_steps}")

    return BeatEveryStep()


def _plain_progress_callback():
    """Timestamped step lines for a log or a pipe, where the Trainer's tqdm bar is one line of redraws."""
    from transformers import TrainerCallback

    class StepLines(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.lines = PlainProgress(sys.stderr)
            self.job = self.lines.add_task("sft step", total=state.max_steps, completed=state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.lines.update(self.job, completed=state.global_step)

    return StepLines()


def _checkpoint_step(checkpoint: str) -> int:
    return int(Path(checkpoint).name.split("-")[-1])


def _save_pretrained(model, tokenizer, target: Path) -> None:
    with atomic_dir(target) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)


def build_trainer(cfg: SFTTrainConfig, model, tokenizer, train_dataset, eval_dataset=None, callbacks=()):
    """A TRL SFTTrainer on a pre-tokenized dataset whose `labels` carry the formatter's mask."""
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    on_cuda = next(model.parameters()).device.type == "cuda"
    # Weights and optimizer state stay float32; cfg.dtype is the autocast precision on CUDA. Pure
    # bfloat16 weights would round away AdamW updates at lr ~1e-5. CPU always computes in float32.
    compute = resolve_dtype(cfg.dtype) if on_cuda else torch.float32
    on_terminal = sys.stderr.isatty()
    quiet_library_bars()
    args = SFTConfig(
        output_dir=cfg.out,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="steps" if (eval_dataset is not None and cfg.eval_steps > 0) else "no",
        eval_steps=cfg.eval_steps if cfg.eval_steps > 0 else None,
        seed=cfg.seed,
        report_to="none",
        disable_tqdm=not on_terminal,
        use_cpu=not on_cuda,
        bf16=compute == torch.bfloat16,
        fp16=compute == torch.float16,
        activation_checkpointing=uses_checkpointing(cfg),  # TRL defaults its deprecated alias to True
        # The formatter already fit every example into cfg.max_length by dropping whole old turns;
        # TRL's own token truncation (and its filter of fully-masked rows) must not touch them.
        max_length=None,
        packing=False,
        padding_free=False,
        assistant_only_loss=False,  # the mask comes from our labels, not from TRL's template masking
        completion_only_loss=False,
        shuffle_dataset=False,  # the Trainer's seeded sampler shuffles (and resumes) the order
        dataloader_num_workers=0,
    )
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.lora_targets),
            task_type="CAUSAL_LM",
        )
    set_seed(cfg.seed)  # fresh LoRA weights depend on the global RNG
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[*callbacks, *([] if on_terminal else [_plain_progress_callback()])],
    )
    if not on_cuda:
        score_labelled_positions_only(trainer.model.get_base_model() if cfg.lora else trainer.model)
    return trainer


def score_labelled_positions_only(model) -> None:
    """Make TRL's fused LM head (`model(..., fused_lm_head=True)`) project only the positions whose
    next-token label is not -100, as it already does on Triton devices.

    Off Triton (CPU), TRL 1.16 scores every position so that compilers see fixed tile shapes
    (`trl.trainer.utils.add_fused_lm_head`: "every position is scored instead"). About 10 % of a
    WebShop expert trajectory's positions carry a label, and SmolLM2's 49 152-token head is a fifth
    of its per-token FLOPs, so on CPU that head, its log-softmax, entropy and accuracy run on the
    labelled rows only (measured in benchmarks/sft_bench.py); a right-padded micro-batch runs
    without its attention mask (`padding.attention_inputs`). Same outputs as TRL's: per-token
    log-probs, entropy and top-1 flags, zero off the mask; the loss divides by `num_items_in_batch`.
    Models that scale or soft-cap their logits, MoE router losses and pre-shifted labels keep TRL's
    own path."""
    from trl.trainer.utils import FusedCausalLMOutput

    trl_forward = model.forward
    text_config = model.config.get_text_config()
    scaled = any(
        getattr(text_config, name, None) is not None
        for name in ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")
    )

    @functools.wraps(trl_forward)
    def forward(*args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kwargs):
        if not fused_lm_head or scaled or shift_labels is not None or labels is None or getattr(text_config, "output_router_logits", False):
            return trl_forward(
                *args,
                fused_lm_head=fused_lm_head,
                labels=labels,
                shift_labels=shift_labels,
                num_items_in_batch=num_items_in_batch,
                **kwargs,
            )
        kwargs["use_cache"] = False
        if kwargs.get("attention_mask") is not None:  # TRL pads on the right: no mask needed
            kwargs.update(attention_inputs(kwargs.pop("attention_mask")))
        hidden = model.base_model(*args, **kwargs).last_hidden_state[:, :-1]
        labels = labels[:, 1:].to(hidden.device)
        mask = labels != IGNORE_INDEX
        targets = labels[mask]
        logprobs = torch.log_softmax(model.get_output_embeddings()(hidden[mask]).float(), dim=-1)
        picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():
            entropy = -(logprobs.exp() * logprobs).sum(-1)
            is_top1 = logprobs.argmax(-1) == targets
        # masked_scatter keeps an all-masked micro-batch connected to the graph (a zero loss, not an error)
        log_probs = picked.new_zeros(mask.shape).masked_scatter(mask, picked)
        denominator = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(
            loss=-log_probs.sum() / denominator,
            log_probs=log_probs,
            entropy=entropy.new_zeros(mask.shape).masked_scatter(mask, entropy),
            is_top1=torch.zeros_like(mask).masked_scatter(mask, is_top1),
            label_mask=mask,
        )

    model.forward = forward


def _save_final(trainer, cfg: SFTTrainConfig, out: Path) -> tuple[Path, Path | None]:
    """Save `final/` (and `adapter/` for LoRA) from the main process, atomically.

    `Trainer.save_model` is called on every process: under FSDP or ZeRO-3 it is collective (it
    gathers the shards) and only the main process writes. A LoRA model is merged in memory when it
    is whole on this process; sharded, the main process merges the saved adapter into a fresh copy
    of the base model instead."""
    main = trainer.is_world_process_zero()
    sharded = trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled
    final, adapter = out / "final", (out / "adapter" if cfg.lora else None)
    target = adapter or final
    staging = out / f".{target.name}.partial"  # one name all processes agree on
    if main:
        shutil.rmtree(staging, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staging))
    trainer.accelerator.wait_for_everyone()
    if not main:
        return final, adapter
    replace_dir(staging, target)
    if cfg.lora:
        if sharded:
            from peft import PeftModel

            base, tokenizer, _ = load_model(cfg.model, dtype="float32", device="cpu", trust_remote_code=cfg.trust_remote_code)
            merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
        else:
            merged, tokenizer = trainer.model.merge_and_unload(), trainer.processing_class
        _save_pretrained(merged, tokenizer, final)
    return final, adapter


def train_sft(cfg: SFTTrainConfig, callbacks=()) -> dict[str, Any]:
    """Run SFT as configured; returns (and writes to out/sft_summary.json) a summary dict.

    Under a multi-process launcher every process returns the summary; only rank 0 writes files."""
    from transformers.trainer_utils import get_last_checkpoint

    started = time.time()
    rank, local_rank = launched_rank(), launched_local_rank()
    main = rank == 0
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    checkpoint = get_last_checkpoint(str(out)) if any(out.glob("checkpoint-*")) else None
    if checkpoint and not cfg.resume:
        raise OutputExists(f"{out} already holds {Path(checkpoint).name}; pass resume=True to continue from it, or use a fresh out folder")
    if cfg.resume and checkpoint is None:
        log.info("resume requested but %s has no checkpoint; starting from the base model", out)
    with Heartbeat(out, "sft", enabled=main) as beat:
        return _train(cfg, out, checkpoint, beat, callbacks, started, rank, local_rank)


def _train(
    cfg: SFTTrainConfig, out: Path, checkpoint: str | None, beat: Heartbeat, callbacks, started: float, rank: int, local_rank: int
) -> dict[str, Any]:
    main = rank == 0
    device = cfg.device
    if device is None and local_rank and torch.cuda.is_available():
        device = f"cuda:{local_rank}"  # not every rank's copy on GPU 0 on its way to the Trainer
    model, tokenizer, model_name = load_model(cfg.model, dtype="float32", device=device, trust_remote_code=cfg.trust_remote_code)
    if model.device.type != "cuda" and resolve_dtype(cfg.dtype) != torch.float32:
        log.warning("SFT on %s computes in float32 (dtype=%s applies on CUDA only)", model.device.type, cfg.dtype)
    if getattr(model, "is_quantized", False) or getattr(model, "hf_quantizer", None) is not None:
        raise ConfigError(
            f"{cfg.model} is flagged as quantised, which Trainer refuses to train; load GGUF models through their "
            "converted safetensors folder (see prismrl.models.builtin_smollm2_folder)"
        )

    train = load_and_encode(cfg.data, tokenizer, cfg.max_length, cfg.skip_invalid)
    for skipped in train.skipped:
        log.warning("SFT: skipping %s (%s): %s", skipped["id"], skipped["where"], skipped["reason"])
    if not train.encoded:
        raise InputError(f"no trainable trajectory in {cfg.data}: {len(train.skipped)} skipped ({train.skipped[:3]} ...)")

    evalset = load_and_encode(cfg.eval_data, tokenizer, cfg.max_length, cfg.skip_invalid) if cfg.eval_data else None
    if evalset is not None and not evalset.encoded:
        raise InputError(f"no usable held-out trajectory in {cfg.eval_data}: {evalset.skipped[:3]} ...")

    metrics_path = out / METRICS_FILE
    if main and checkpoint:
        # Drop log lines the interrupted run wrote after its last checkpoint: they are redone.
        kept = [r for r in read_jsonl_prefix(metrics_path) if r.get("step", 0) <= _checkpoint_step(checkpoint)]
        atomic_write_jsonl(metrics_path, kept)
    elif main and metrics_path.exists():
        metrics_path.unlink()

    def eval_loss(current_model) -> float | None:
        if evalset is None:
            return None
        total, count = encoded_loss_sum(current_model, evalset.encoded, tokenizer.pad_token_id, cfg.batch_size)
        return total / count

    eval_before = None
    if evalset is not None:
        if checkpoint:  # already measured on the base model by the interrupted run
            eval_before = next((r["eval_loss_before"] for r in read_jsonl_prefix(metrics_path) if "eval_loss_before" in r), None)
        if eval_before is None:
            eval_before = eval_loss(model)
            if main:
                with JsonlAppender(metrics_path) as appender:
                    appender.write({"step": 0, "time": time.time(), "eval_loss_before": eval_before})

    trainer = build_trainer(
        cfg,
        model,
        tokenizer,
        to_dataset(train),
        to_dataset(evalset) if (evalset is not None and cfg.eval_steps > 0) else None,
        callbacks=[_metrics_callback(metrics_path), _heartbeat_callback(beat), *callbacks],
    )
    train_output = trainer.train(resume_from_checkpoint=checkpoint)

    eval_after = eval_loss(trainer.model)  # every process: a sharded model's forward is collective
    final, adapter = _save_final(trainer, cfg, out)
    if not main:
        return {
            "steps": trainer.state.global_step,
            "train_loss": None,
            "eval_loss_before": eval_before,
            "eval_loss_after": eval_after,
            "final_model": str(final),
            "rank": rank,
        }

    losses = [r["loss"] for r in read_jsonl_prefix(metrics_path) if "loss" in r]
    with JsonlAppender(metrics_path) as appender:
        appender.write({"step": trainer.state.global_step, "time": time.time(), "eval_loss_after": eval_after})

    summary = {
        "model": cfg.model,
        "model_name": model_name,
        "data": str(cfg.data),
        "out": str(out),
        "n_examples": len(train.encoded),
        "n_skipped": len(train.skipped),
        "skipped": train.skipped,
        "n_truncated": train.n_truncated,
        "n_dropped_turns": sum(e.n_dropped_turns for e in train.encoded),
        "tokens": train.n_tokens,  # one pass over the data (all tokens; response_tokens carry loss)
        "response_tokens": train.n_response_tokens,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "resumed_from": checkpoint,
        # Logged per-step losses (across an interrupted and a resumed session alike).
        "train_loss": losses[-1] if losses else None,
        "train_loss_first": losses[0] if losses else None,
        "train_loss_mean": (sum(losses) / len(losses)) if losses else train_output.training_loss,
        "eval_data": cfg.eval_data,
        "eval_loss_before": eval_before,
        "eval_loss_after": eval_after,
        "eval_n_examples": len(evalset.encoded) if evalset else 0,
        "eval_skipped": evalset.skipped if evalset else [],
        "seconds": round(time.time() - started, 3),
        "final_model": str(final),
        "adapter": str(adapter) if adapter else None,
        "gradient_checkpointing": uses_checkpointing(cfg),
        "config": asdict(cfg),
    }
    if summary["train_loss_mean"] is not None and not math.isfinite(summary["train_loss_mean"]):
        log.warning("SFT: non-finite training loss")
    atomic_write_json(out / SUMMARY_FILE, summary)
    return summary
