"""A forward pass replayed from CUDA graphs, one captured per batch-size bucket; batches are padded to a bucket.

Capture follows PyTorch's recipe for whole-network capture: static input buffers on the device, a few warm-up
runs on a side stream (lazy library handles, allocator), then the capture on that same stream, then
`graph.replay()` after copying each batch into its bucket's static input. Each bucket's graph keeps its own memory
pool, so no replay can overwrite another bucket's output. A class-conditional generator's labels (class weights)
are a second static input, padded and copied like the latents (padding rows: zero latents, zero weights).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from service.inference.buckets import bucket_for, fill_padded

_WARM_UP_RUNS = 3


@dataclass(frozen=True)
class _Captured:
    graph: torch.cuda.CUDAGraph
    static_input: torch.Tensor  # [bucket, *item_shape] on the device
    static_labels: torch.Tensor | None  # [bucket, *label_shape] on the device (conditional generators)
    static_output: torch.Tensor  # [bucket, ...] on the device, rewritten by every replay


class GraphedForward:
    """`forward` (device tensor [B, *item_shape], and labels [B, *label_shape] when `label_shape` is given -> device
    tensor [B, ...]) captured at each bucket size.

    Calling it with a CPU batch [n, *item_shape] stacks the batch into a pinned host buffer padded to the bucket,
    moves it in one non-blocking copy, replays the bucket's graph and returns the first n rows of the static
    output: a device view that the next call overwrites, so the caller copies it out (and synchronises) first.
    Batches larger than the largest bucket run `forward` uncaptured. One caller at a time (the engine's worker).
    """

    def __init__(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        item_shape: tuple[int, ...],
        input_dtype: torch.dtype,
        buckets: list[int],
        device: torch.device,
        label_shape: tuple[int, ...] | None = None,
    ) -> None:
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, got {device}")
        self._forward = forward
        self._device = device
        self._label_shape = label_shape
        self.buckets = sorted(buckets)
        self._staging = torch.zeros(self.buckets[-1], *item_shape, dtype=input_dtype, pin_memory=True)
        self._label_staging = (
            torch.zeros(self.buckets[-1], *label_shape, dtype=input_dtype, pin_memory=True)
            if label_shape is not None
            else None
        )
        self._staged = torch.cuda.Event()  # the last copy out of the staging buffer
        self._captured: dict[int, _Captured] = {}
        with torch.inference_mode(), torch.cuda.device(device):
            stream = torch.cuda.Stream(device)
            for size in self.buckets:
                self._captured[size] = self._capture(size, item_shape, input_dtype, stream)
            torch.cuda.current_stream(device).wait_stream(stream)
            torch.cuda.synchronize(device)

    def _capture(
        self, size: int, item_shape: tuple[int, ...], input_dtype: torch.dtype, stream: torch.cuda.Stream
    ) -> _Captured:
        static_input = torch.zeros(size, *item_shape, dtype=input_dtype, device=self._device)
        static_labels = None
        inputs: tuple[torch.Tensor, ...] = (static_input,)
        if self._label_shape is not None:
            static_labels = torch.zeros(size, *self._label_shape, dtype=input_dtype, device=self._device)
            inputs += (static_labels,)
        stream.wait_stream(torch.cuda.current_stream(self._device))
        with torch.cuda.stream(stream):
            for _ in range(_WARM_UP_RUNS):
                self._forward(*inputs)
        stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        # thread_local: another model's worker may allocate (pinned host memory, the caching allocator) on its own
        # thread while this one captures; in the default global mode CUDA would refuse those calls, failing that
        # model's batch as well as this capture. Only this thread's calls belong to the capture.
        with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
            static_output = self._forward(*inputs)
        return _Captured(graph, static_input, static_labels, static_output)

    def close(self) -> None:
        """Drop every bucket's graph and static buffers, so their private pools can return to the allocator."""
        self._staged.synchronize()
        for captured in self._captured.values():
            captured.graph.reset()
        self._captured.clear()

    def __call__(self, batch: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """CPU batch [n, *item_shape] (and labels [n, *label_shape] when captured with labels) -> device output
        [n, ...] (a view into the bucket's static output)."""
        if (labels is None) != (self._label_shape is None):
            raise ValueError("these graphs take labels" if self._label_shape is not None else "they take no labels")
        n = batch.shape[0]
        bucket = bucket_for(n, self.buckets)
        if bucket is None:
            inputs = [batch] if labels is None else [batch, labels]
            return self._forward(*(x.pin_memory().to(self._device, non_blocking=True) for x in inputs))
        captured = self._captured[bucket]
        # The buffers were made in inference mode; writing into them is allowed only there.
        with torch.inference_mode():
            self._staged.synchronize()  # the previous batch has left the staging buffer (no-op before the first)
            host = fill_padded(self._staging, batch, bucket)  # [bucket, *item_shape], pinned
            captured.static_input.copy_(host, non_blocking=True)
            if labels is not None and self._label_staging is not None and captured.static_labels is not None:
                host_labels = fill_padded(self._label_staging, labels, bucket)  # [bucket, *label_shape], pinned
                captured.static_labels.copy_(host_labels, non_blocking=True)
            self._staged.record()
            captured.graph.replay()
            return captured.static_output[:n]
