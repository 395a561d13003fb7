"""Rows of different lengths as one batch tensor: what the probe, SFT, RL and sampling all build."""

from __future__ import annotations

import torch


def padded(rows: list[list], fill, left: bool = False, dtype: torch.dtype = torch.long, device=None) -> torch.Tensor:
    """`rows` as a [len(rows), longest] tensor, each row filled up with `fill` on the right (on the
    left with `left=True`, as generation needs, so every row's last token sits in the last column)."""
    width = max((len(row) for row in rows), default=0)
    out = torch.full((len(rows), width), fill, dtype=dtype)
    for index, row in enumerate(rows):
        if row:
            values = torch.tensor(row, dtype=dtype)
            if left:
                out[index, width - len(row) :] = values
            else:
                out[index, : len(row)] = values
    return out if device is None else out.to(device)


def attention_mask(lengths: list[int], left: bool = False, device=None) -> torch.Tensor:
    """1 on each row's first (last, with `left=True`) `length` columns of the longest, 0 elsewhere."""
    return padded([[1] * n for n in lengths], 0, left=left, device=device)


def attention_inputs(attention: torch.Tensor) -> dict[str, torch.Tensor]:
    """The mask argument of a forward over whole right-padded sequences (no cache): none at all.

    Under causal attention a right-padded row's real tokens never attend to the pads after them,
    so without the mask the real positions get exactly what the mask gives (the pads' own outputs
    are never used), and SDPA runs its fused causal kernel over grouped key/value heads. With a
    mask, transformers copies keys and values once per head group and the kernel computes every
    block (benchmarks/rl_update_bench.py, benchmarks/sft_bench.py). Any other padding keeps its mask.
    """
    right_padded = bool((attention.cummin(dim=1).values == attention).all())
    return {} if right_padded else {"attention_mask": attention}
