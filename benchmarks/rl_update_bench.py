"""One GRPO micro-batch's forward + backward: logits at every position vs. only where a generated
token is predicted (`train.rl.response_logprobs`), the padded pair's attention through torch's
`enable_gqa` with the mask (`rollout.decoding.gqa_prefill`, no per-group copies of keys and values),
and the same samples one per micro-batch (no padding, no attention mask: SDPA's causal kernel),
same model and samples, in one run.

    python benchmarks/rl_update_bench.py                        # SmolLM2-135M, 2 samples of ~1000 tokens, 1 in 7 generated
    python benchmarks/rl_update_bench.py --lengths 2000,1800 --generated-every 5
"""

from __future__ import annotations

import argparse
import time

import torch

from prismrl.models import load_model
from prismrl.rollout.decoding import gqa_prefill
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

    def one_per_micro_batch(model, samples, temperature, pad_id):
        for sample in samples[:-1]:  # backward each at once, as update_policy's micro-batches do
            logprobs, mask, _ = response_logprobs(model, [sample], temperature, pad_id)
            (logprobs * mask).sum().backward()
        return response_logprobs(model, samples[-1:], temperature, pad_id)[:2]

    def grouped_query_attention(model, samples, temperature, pad_id):
        with gqa_prefill(model):  # the backward runs outside, through the same saved kernel
            return response_logprobs(model, samples, temperature, pad_id)[:2]

    paths = {
        "every position": full_vocabulary_logprobs,
        "generated only": lambda *a: response_logprobs(*a)[:2],
        "generated only, enable_gqa": grouped_query_attention,
        "generated only, 1 sample per micro-batch": one_per_micro_batch,
    }
    seconds = {path: [] for path in paths}
    values = {}
    for _ in range(args.repeats):
        for path, fn in paths.items():  # interleaved, so a load change hits both
            started = time.perf_counter()
            logprobs, mask = fn(model, samples, 1.0, tokenizer.pad_token_id)
            (logprobs * mask).sum().backward()
            model.zero_grad(set_to_none=True)
            seconds[path].append(time.perf_counter() - started)
            values[path] = logprobs[mask].detach()
    print(
        f"# {name}, lengths {args.lengths}, 1 in {args.generated_every} positions generated, {args.threads} threads, "
        f"best of {args.repeats}; max |Δ log-prob| {float((values['every position'] - values['generated only']).abs().max()):.2e}"
    )
    print("| path | seconds (forward + backward) |\n|---|---:|")
    for path in paths:
        print(f"| {path} | {min(seconds[path]):.2f} |")
    print(f"| **speed-up, generated only** | **{min(seconds['every position']) / min(seconds['generated only']):.2f}x** |")
    grouped = min(seconds["generated only, enable_gqa"])
    print(f"| **speed-up, enable_gqa vs generated only** | **{min(seconds['generated only']) / grouped:.2f}x** |")
    single = min(seconds["generated only, 1 sample per micro-batch"])
    print(f"| **speed-up, 1 sample per micro-batch** | **{min(seconds['every position']) / single:.2f}x** |")
    print(
        f"# tokens/s (forward + backward, padding not counted): {sum(len(s.ids) for s in samples) / single:.1f} one per micro-batch, "
        f"{sum(len(s.ids) for s in samples) / min(seconds['generated only']):.1f} padded pair, "
        f"{sum(len(s.ids) for s in samples) / grouped:.1f} padded pair with enable_gqa"
    )
    print(
        f"# max |Δ log-prob| enable_gqa vs generated only: {float((values['generated only'] - values['generated only, enable_gqa']).abs().max()):.2e}"
    )


if __name__ == "__main__":
    main()
