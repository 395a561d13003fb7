"""The kernels behind one decode step of a batch-16 rollout over ~2.8k cached tokens (SmolLM2-135M's
shapes: 9 query heads over 3 key/value heads of 64 dims, 49 152-token vocabulary), timed in one run:

    python benchmarks/decode_kernels_bench.py

- a plain sum over as many bytes as one layer's cached keys + values (the memory-bandwidth floor);
- one-token attention: transformers' folded query heads (CPU flash kernel) vs `enable_gqa`;
- 20 new tokens over the cache: transformers' `repeat_kv` copies vs `enable_gqa` (same output);
- sampling: transformers' top-p sort of 16 x 49k logits, a top-1024, and the multinomial draw.
"""

import time

import torch
import torch.nn.functional as F

ROWS, HEADS, KV_HEADS, CACHED, DIM, VOCAB, FED = 16, 9, 3, 2790, 64, 49152, 20


def milliseconds(fn, repeats: int = 20) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats * 1000


def repeated(x):
    return x[:, :, None].expand(ROWS, KV_HEADS, HEADS // KV_HEADS, CACHED, DIM).reshape(ROWS, HEADS, CACHED, DIM)


def transformers_top_p(logits, top_p=0.9):
    ordered, index = torch.sort(logits, descending=False)
    remove = ordered.softmax(-1).cumsum(-1) <= 1 - top_p
    remove[..., -1:] = False
    return logits.masked_fill(remove.scatter(1, index, remove), -float("inf"))


def main() -> None:
    torch.set_num_threads(2)
    keys, values = torch.randn(ROWS, KV_HEADS, CACHED, DIM), torch.randn(ROWS, KV_HEADS, CACHED, DIM)
    flat = torch.randn(2 * keys.numel())
    mask = torch.ones(ROWS, 1, 1, CACHED, dtype=torch.bool)
    mask[..., :100] = False  # left padding
    query = torch.randn(ROWS, HEADS, 1, DIM)
    folded = query.reshape(ROWS, KV_HEADS, HEADS // KV_HEADS, DIM)
    fed_query = torch.randn(ROWS, HEADS, FED, DIM)
    fed_mask = torch.ones(ROWS, 1, FED, CACHED, dtype=torch.bool).tril(CACHED - FED)
    fed_mask[..., :100] = False
    copied = F.scaled_dot_product_attention(fed_query, repeated(keys), repeated(values), attn_mask=fed_mask)
    grouped = F.scaled_dot_product_attention(fed_query, keys, values, attn_mask=fed_mask, enable_gqa=True)
    logits = torch.randn(ROWS, VOCAB) * 3
    probs = transformers_top_p(logits).softmax(-1)
    print(f"{ROWS} rows, {CACHED} cached tokens, 2 threads; ms per call")
    print(f"| sum over one layer's keys + values ({2 * keys.numel() * 4 / 1e6:.1f} MB) | {milliseconds(lambda: flat.sum()):.2f} |")
    print(
        f"| 1-token attention, folded heads (transformers) | {milliseconds(lambda: F.scaled_dot_product_attention(folded, keys, values, attn_mask=mask)):.2f} |"
    )
    print(
        f"| 1-token attention, enable_gqa | {milliseconds(lambda: F.scaled_dot_product_attention(query, keys, values, attn_mask=mask, enable_gqa=True)):.2f} |"
    )
    print(
        f"| {FED} fed tokens, repeat_kv (transformers) | {milliseconds(lambda: F.scaled_dot_product_attention(fed_query, repeated(keys), repeated(values), attn_mask=fed_mask), 5):.2f} |"
    )
    print(
        f"| {FED} fed tokens, enable_gqa | {milliseconds(lambda: F.scaled_dot_product_attention(fed_query, keys, values, attn_mask=fed_mask, enable_gqa=True), 5):.2f} |"
    )
    print(f"| top-p by full sort (transformers) | {milliseconds(lambda: transformers_top_p(logits)):.2f} |")
    print(f"| top-1024 | {milliseconds(lambda: torch.topk(logits, 1024)):.2f} |")
    print(f"| multinomial draw | {milliseconds(lambda: torch.multinomial(probs, 1)):.2f} |")
    print(f"max |repeat_kv - enable_gqa| = {(copied - grouped).abs().max().item():.1e}")


if __name__ == "__main__":
    main()
