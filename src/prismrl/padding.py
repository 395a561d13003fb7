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
