"""Batch-size buckets for fixed-shape forward passes (CUDA graphs): which bucket a batch runs in, and its padding.

Pure functions over sizes and CPU tensors, so that the choice and the padding are tested without a GPU.
"""

from __future__ import annotations

import torch


def bucket_sizes(max_batch_size: int) -> list[int]:
    """Powers of two up to the largest batch, and the largest batch itself: every size 1..max fits one bucket."""
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
    sizes = [1 << k for k in range(max_batch_size.bit_length()) if (1 << k) <= max_batch_size]
    if sizes[-1] != max_batch_size:
        sizes.append(max_batch_size)
    return sizes


def bucket_for(n: int, buckets: list[int]) -> int | None:
    """The smallest bucket that holds `n` items; None when `n` is larger than every bucket (run it unbucketed)."""
    if n < 1:
        raise ValueError(f"a batch holds at least one item, got {n}")
    for size in buckets:  # sorted ascending, a handful of entries
        if size >= n:
            return size
    return None


def fill_padded(buffer: torch.Tensor, rows: torch.Tensor, bucket: int) -> torch.Tensor:
    """Copy `rows` [n, ...] into the head of `buffer` [>= bucket, ...], zero the padding rows, return buffer[:bucket].

    The padding rows are valid inputs (zero latents), so a network whose items do not interact (eval mode) gives
    the same first n outputs as on the unpadded batch; the caller slices the padding off.
    """
    n = rows.shape[0]
    if not 1 <= n <= bucket <= buffer.shape[0]:
        raise ValueError(f"cannot pad {n} rows to a bucket of {bucket} in a buffer of {buffer.shape[0]} rows")
    if rows.shape[1:] != buffer.shape[1:]:
        raise ValueError(f"rows of shape {tuple(rows.shape[1:])} do not fit a buffer of {tuple(buffer.shape[1:])}")
    buffer[:n].copy_(rows)
    buffer[n:bucket].zero_()
    return buffer[:bucket]  # [bucket, ...]
