"""Host buffers for the outputs a runner copies off its device, each reused once nothing reads it any more.

On CUDA every batch's output is copied into pinned host memory, and the array over that memory is what the engine
slices per request and the codec pool encodes, after the engine's worker has moved on to the next batch. So a
buffer cannot simply be rewritten at the next batch: `HostBuffers.lend` ties each buffer to the array it hands
out, and takes it back when that array and every view of it are gone (numpy's views keep the array they were cut
from alive, so a finalizer on that array runs after the last slice is dropped).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

import numpy as np
import torch

Allocate = Callable[[tuple[int, ...], torch.dtype], torch.Tensor]  # (shape, dtype) -> a new CPU tensor
_Key = tuple[tuple[int, ...], torch.dtype]  # (item shape, dtype)


def allocate_pinned(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A new page-locked host tensor (needs CUDA): copies from the device into it can be asynchronous. A normal
    tensor even under inference mode, so that it can be written in and out of that mode alike."""
    with torch.inference_mode(False):
        return torch.empty(shape, dtype=dtype, pin_memory=True)


class HostBuffers:
    """Buffers of `rows` rows, per item shape and dtype, at most `limit` of each; allocated on first need.

    `lend((n, *item_shape), dtype)` gives a tensor [n, *item_shape] and a numpy array over the same memory: the
    caller fills the tensor and hands out the array. While that array (or any view of it) lives, its buffer is
    lent; when all are in use, or n is more than `rows`, the memory is a fresh allocation instead, never reused.
    Thread-safe: the last reference to an array may go on any thread.
    """

    def __init__(self, rows: int, allocate: Allocate, limit: int = 8) -> None:
        if rows < 1 or limit < 1:
            raise ValueError(f"rows and limit must be at least 1, got {rows} and {limit}")
        self.rows = rows
        self.limit = limit
        self._allocate = allocate
        self._lock = threading.Lock()
        self._free: dict[_Key, list[torch.Tensor]] = {}
        self._made: dict[_Key, int] = {}

    def lend(self, shape: tuple[int, ...], dtype: torch.dtype) -> tuple[torch.Tensor, np.ndarray]:
        """A tensor of `shape` and the array over its memory; the buffer returns when the array is gone."""
        n, item_shape = shape[0], tuple(shape[1:])
        buffer = self._take((item_shape, dtype)) if n <= self.rows else None
        if buffer is None:
            fresh = self._allocate(shape, dtype)
            return fresh, fresh.numpy()
        view = buffer[:n]  # [n, *item_shape]
        array = view.numpy()
        weakref.finalize(array, self._give_back, (item_shape, dtype), buffer)
        return view, array

    def lent(self) -> int:
        """How many buffers are lent out now (all shapes)."""
        with self._lock:
            return sum(self._made.values()) - sum(len(free) for free in self._free.values())

    def _take(self, key: _Key) -> torch.Tensor | None:
        with self._lock:
            free = self._free.setdefault(key, [])
            if free:
                return free.pop()
            if self._made.get(key, 0) >= self.limit:
                return None
            self._made[key] = self._made.get(key, 0) + 1
        try:
            return self._allocate((self.rows, *key[0]), key[1])
        except BaseException:
            with self._lock:
                self._made[key] -= 1
            raise

    def _give_back(self, key: _Key, buffer: torch.Tensor) -> None:
        with self._lock:
            self._free[key].append(buffer)
