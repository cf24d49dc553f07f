"""The runner's output buffers: one is reused only after the array lent over it, and every slice of it, are gone.

On the CPU with plain tensors (pinned memory needs CUDA); the runner's CUDA path uses the same class with pinned
allocations (tests/service/inference/test_runner_gpu.py checks that an earlier batch's array stays intact).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from service.inference.host_buffers import HostBuffers


class CountingAllocator:
    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        self.shapes.append(shape)
        return torch.empty(shape, dtype=dtype)


def test_a_lent_buffer_is_not_reused_while_its_array_lives():
    buffers = HostBuffers(8, CountingAllocator())
    first_tensor, first = buffers.lend((4, 3), torch.uint8)
    first_tensor.fill_(1)
    second_tensor, second = buffers.lend((4, 3), torch.uint8)
    second_tensor.fill_(2)
    assert not np.shares_memory(first, second)
    assert (first == 1).all() and (second == 2).all()
    assert buffers.lent() == 2


def test_a_buffer_comes_back_once_the_array_and_its_slices_are_gone():
    allocate = CountingAllocator()
    buffers = HostBuffers(8, allocate)
    tensor, array = buffers.lend((5, 2), torch.float32)
    address = tensor.data_ptr()
    one_request = array[1:3]  # what the engine hands one request
    del tensor, array
    assert buffers.lent() == 1  # the slice still reads the buffer
    other_tensor, other = buffers.lend((5, 2), torch.float32)
    addresses = {address, other_tensor.data_ptr()}
    assert len(addresses) == 2 and not np.shares_memory(other, one_request)
    del one_request, other_tensor, other
    assert buffers.lent() == 0
    again, _ = buffers.lend((3, 2), torch.float32)  # a smaller batch takes one of the two buffers
    assert again.data_ptr() in addresses and again.shape == (3, 2)
    assert allocate.shapes == [(8, 2), (8, 2)]  # two buffers of `rows` rows, nothing more


def test_shapes_and_dtypes_have_their_own_buffers():
    allocate = CountingAllocator()
    buffers = HostBuffers(4, allocate)
    for shape, dtype in [((2, 8, 8, 1), torch.uint8), ((2,), torch.float32), ((2, 8, 8, 1), torch.float32)]:
        tensor, array = buffers.lend(shape, dtype)
        assert tensor.shape == shape and tensor.dtype == dtype and array.shape == shape
        del tensor, array
    assert allocate.shapes == [(4, 8, 8, 1), (4,), (4, 8, 8, 1)]
    assert buffers.lent() == 0


def test_past_the_limit_and_past_the_rows_the_memory_is_fresh_and_never_pooled():
    allocate = CountingAllocator()
    buffers = HostBuffers(4, allocate, limit=2)
    held = [buffers.lend((4, 2), torch.float32)[1] for _ in range(3)]  # the third: a fresh allocation
    big_tensor, big = buffers.lend((6, 2), torch.float32)  # more rows than a buffer has
    assert big.shape == (6, 2)
    assert allocate.shapes == [(4, 2), (4, 2), (4, 2), (6, 2)]
    assert buffers.lent() == 2
    del held, big_tensor, big
    assert buffers.lent() == 0
    buffers.lend((4, 2), torch.float32)
    assert len(allocate.shapes) == 4  # a pooled buffer again


def test_arrays_dropped_on_other_threads_return_their_buffers():
    buffers = HostBuffers(2, CountingAllocator(), limit=4)
    arrays = [buffers.lend((2, 2), torch.float32)[1] for _ in range(4)]
    threads = [threading.Thread(target=arrays.pop) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert buffers.lent() == 0


def test_sizes_below_one_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        HostBuffers(0, CountingAllocator())
