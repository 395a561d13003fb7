"""One GRPO micro-batch's forward + backward, same model and samples, in one run, interleaved:

- `every position`: logits and log-softmax at every position of a padded pair (with its mask);
- `generated only, mask`: `train.rl.response_logprobs`' LM head only where a generated token is
  predicted, the pair still masked (transformers copies keys and values per head group, SDPA
  computes every block);
- `... mask, enable_gqa`: the same mask through torch's `enable_gqa` (`rollout.decoding.gqa_prefill`);
- `generated only, no mask`: as shipped — a right-padded pair needs no mask under causal attention
  (`padding.attention_inputs`), so SDPA runs its fused causal kernel;
- `1 sample per micro-batch`: no padding at all.

    python benchmarks/rl_update_bench.py                        # SmolLM2-135M, 2 samples of ~1000 tokens, 1 in 7 generated
    python benchmarks/rl_update_bench.py --lengths 2000,1500 --generated-every 13 --repeats 2
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from prismrl.models import load_model
from prismrl.rollout.decoding import gqa_prefill
from prismrl.train import rl
from prismrl.train.rl import Sample, response_logprobs


def full_vocabulary_logprobs(model, samples: list[Sample], temperature: float, pad_id: int):
    """The straightforward version: logits and log-softmax at every position, then gather."""
    width = max(len(s.ids) for s in samples)
    ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    attention = torch.zeros_like(ids)
    mask = torch.zeros((len(samples), width - 1), dtype=torch.bool)
    for row, sample in enumerate(samples):
        ids[row, : len(sample.ids)] = torch.tensor(sample.ids)
        attention[row, : len(sample.ids)] = 1
        mask[row, : len(sample.ids) - 1] = torch.tensor(sample.generated[1:])
    logits = model(input_ids=ids, attention_mask=attention, use_cache=False).logits[:, :-1].float() / temperature
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return logprobs * mask, mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin:smollm2-135m")
    parser.add_argument("--lengths", default="1000,900")
    parser.add_argument("--generated-every", type=int, default=7, help="one position in N is a generated token")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, tokenizer, name = load_model(args.model, device="cpu")
    model.train()
    samples = []
    for length in (int(n) for n in args.lengths.split(",")):
        ids = torch.randint(100, len(tokenizer) - 1, (length,)).tolist()
        generated = [i % args.generated_every == 0 for i in range(length)]
        samples.append(Sample(ids, generated, [1.0] * length))
    shipped_inputs = rl.attention_inputs

    def masked(model, samples, temperature, pad_id, grouped=False):
        rl.attention_inputs = lambda attention: {"attention_mask": attention}
        try:
            with gqa_prefill(model) if grouped else contextlib.nullcontext():  # the backward reuses the saved kernel
                return response_logprobs(model, samples, temperature, pad_id)[:2]
        finally:
            rl.attention_inputs = shipped_inputs

    def one_per_micro_batch(model, samples, temperature, pad_id):
        for sample in samples[:-1]:  # backward each at once, as update_policy's micro-batches do
            logprobs, mask, _ = response_logprobs(model, [sample], temperature, pad_id)
            (logprobs * mask).sum().backward()
        return response_logprobs(model, samples[-1:], temperature, pad_id)[:2]

    paths = {
        "every position": full_vocabulary_logprobs,
        "generated only, mask": masked,
        "generated only, mask, enable_gqa": lambda *a: masked(*a, grouped=True),
        "generated only, no mask (shipped)": lambda *a: response_logprobs(*a)[:2],
        "generated only, 1 sample per micro-batch": one_per_micro_batch,
    }
    seconds = {path: [] for path in paths}
    values = {}
    for _ in range(args.repeats):
        for path, fn in paths.items():  # interleaved, so a load change hits all alike
            started = time.perf_counter()
            logprobs, mask = fn(model, samples, 1.0, tokenizer.pad_token_id)
            (logprobs * mask).sum().backward()
            model.zero_grad(set_to_none=True)
            seconds[path].append(time.perf_counter() - started)
            values[path] = logprobs[mask].detach()
    reference = values["every position"]
    tokens = sum(len(s.ids) for s in samples)
    print(
        f"# {name}, lengths {args.lengths}, 1 in {args.generated_every} positions generated, {args.threads} threads, best of {args.repeats}"
    )
    print(
        "| path | seconds (forward + backward) | tokens/s | x every position | max abs. diff of the log-probs |\n|---|---:|---:|---:|---:|"
    )
    for path in paths:
        best = min(seconds[path])
        same_rows = values[path].shape == reference.shape  # one per micro-batch returns the last sample's only
        difference = f"{float((values[path] - reference).abs().max()):.1e}" if same_rows else "–"
        print(f"| {path} | {best:.2f} | {tokens / best:.1f} | {min(seconds['every position']) / best:.2f}x | {difference} |")


if __name__ == "__main__":
    main()
