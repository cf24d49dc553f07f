"""The forward passes of one checkpoint on one device: the functions the batching engine calls with whole batches."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from models import Checkpoint, ImageGeneratorConfig, from_uint8, to_uint8
from service.inference.backends import resolve_backend, with_backend
from service.inference.buckets import bucket_sizes
from service.inference.cuda_graphs import GraphedForward
from service.inference.host_buffers import HostBuffers, allocate_pinned
from service.settings import Backend

log = logging.getLogger(__name__)


@runtime_checkable
class _ScoresEveryClass(Protocol):
    """A conditional critic: images [N, C, H, W] -> scores [N, n_classes], each image against every class."""

    def class_scores(self, x: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class ForwardOptions:
    """How the generator runs: the backend (any device; `auto` resolved on it), and on CUDA optional graphs per
    batch-size bucket. Plain eager PyTorch unless told otherwise (the service passes its `backend` setting, whose
    default is `auto`)."""

    backend: Backend = "eager"
    cuda_graphs: bool = False
    max_batch_size: int = 64


class DeviceForward:
    """Latents [B, z_dim] float32 (and, for a conditional generator, class weights [B, n_classes]) on the device ->
    images [B, H, W, C] uint8 or points [B, out_dim] float32.

    A plain object holding only the network, so that the CUDA graphs captured from it hold no reference back to
    the runner: a bound method of the runner would make a cycle (runner -> graphs -> method -> runner) that only a
    full collection frees, and `gc.freeze()` at start-up makes those rare, so a retired version's GPU memory (its
    weights, static buffers and every bucket's pool) would stay allocated.
    """

    def __init__(self, generator: Callable[..., torch.Tensor], dtype: torch.dtype, kind: str) -> None:
        self.generator = generator
        self.dtype = dtype
        self.kind = kind

    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            out = self.generator(z.to(self.dtype))
        else:
            out = self.generator(z.to(self.dtype), labels.to(self.dtype))
        if self.kind == "image":
            return to_uint8(out)  # [B, H, W, C]
        return out.float()  # [B, out_dim]


class ModelRunner:
    """Generator and critic moved to the serving device and dtype, with host transfers (pinned on CUDA).

    On CUDA a generator batch is stacked into a pinned host buffer and moved in one non-blocking copy; with
    `cuda_graphs` it is padded to the next bucket (powers of two up to `max_batch_size`) and replayed from that
    bucket's graph, the padding sliced off. On the CPU the generator runs on its backend (by default ONNX Runtime
    when it is installed).
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        device: torch.device,
        dtype: torch.dtype,
        options: ForwardOptions | None = None,
    ) -> None:
        options = options or ForwardOptions()
        self.backend = resolve_backend(options.backend, device)  # what runs the generator
        if options.cuda_graphs and self.backend not in ("eager", "channels_last"):
            raise ValueError(f"CUDA graphs capture an eager generator, not backend {self.backend}")
        meta = checkpoint.metadata
        self.device = device
        self.dtype = dtype
        self.options = options
        self.kind = meta.kind
        self.z_dim = meta.z_dim
        self.n_classes = meta.n_classes
        label_shape = (self.n_classes,) if self.n_classes else None  # class weights per item
        self.generator = checkpoint.generator.to(device=device, dtype=dtype).eval()
        self.critic = checkpoint.critic.to(device=device, dtype=dtype).eval()
        if self.n_classes and not isinstance(self.critic, _ScoresEveryClass):
            raise ValueError(f"a conditional critic must score every class; {type(self.critic).__name__} cannot")
        self._generate_on_device = DeviceForward(
            with_backend(self.generator, self.backend, (self.z_dim,), label_shape), dtype, self.kind
        )
        self._cuda = device.type == "cuda"
        self._graphed: GraphedForward | None = None
        self._staging: torch.Tensor | None = None
        # Pinned buffers for the outputs copied off the device, reused once the arrays handed out are gone.
        self._host_buffers: HostBuffers | None = (
            HostBuffers(options.max_batch_size, allocate_pinned) if self._cuda else None
        )
        self.closed = False
        # Each model's work goes to its own stream, so models served from one GPU overlap instead of queueing on
        # the default stream one after another. Every batch runs from the engine's one worker thread, start to
        # end (copies, forward, copy out, sync) on this stream.
        self._stream: torch.cuda.Stream | None = torch.cuda.Stream(device) if self._cuda else None
        if self._cuda and not options.cuda_graphs:  # (the graphs keep their own)
            # One pinned buffer for the latents of a batch; `_to_host` synchronises, so it is free again after.
            self._staging = torch.empty(options.max_batch_size, self.z_dim, pin_memory=True)  # [max_B, z_dim]
        g = meta.generator
        if isinstance(g, ImageGeneratorConfig):
            # What `score` takes per item: 8-bit pixels, HWC (the metadata's height, width and channels).
            self.score_item_shape: tuple[int, ...] = (g.resolution, g.resolution, g.channels)
            self.score_item_dtype = torch.uint8
        else:
            self.score_item_shape = (g.out_dim,)
            self.score_item_dtype = torch.float32
        if options.cuda_graphs:  # (GraphedForward refuses a device that is not CUDA)
            started = time.perf_counter()
            self._graphed = GraphedForward(
                self._generate_on_device,
                (self.z_dim,),
                torch.float32,
                bucket_sizes(options.max_batch_size),
                device,
                label_shape,
            )
            log.info(
                "captured CUDA graphs of the generator for batch sizes %s in %.2f s",
                self._graphed.buckets,
                time.perf_counter() - started,
            )

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        if self._cuda:
            return x.pin_memory().to(self.device, non_blocking=True)
        return x

    def _to_host(self, y: torch.Tensor) -> np.ndarray:
        if self._host_buffers is not None:
            # The array goes to the engine and the codec pool while this worker moves on: its pinned buffer is
            # reused only once the array and its slices are gone.
            host, array = self._host_buffers.lend(tuple(y.shape), y.dtype)
            host.copy_(y, non_blocking=True)
            torch.cuda.current_stream(self.device).synchronize()
            return array
        return y.numpy()

    def _latents_to_device(self, z: torch.Tensor) -> torch.Tensor:
        """[B, z_dim] on the CPU -> the device, through the pinned staging buffer in one non-blocking copy."""
        assert self._staging is not None
        n = z.shape[0]
        if n > self._staging.shape[0]:
            return self._to_device(z)
        staged = self._staging[:n]  # [B, z_dim], pinned
        staged.copy_(z)
        return staged.to(self.device, non_blocking=True)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> np.ndarray:
        """Latents [B, z_dim] float32 (and, for a conditional model, class weights [B, n_classes] float32) ->
        images [B, H, W, C] uint8, or points [B, out_dim] float32."""
        self._check_open()
        self._check_labels(labels, z.shape[0])
        if self._stream is None:
            return self._generate_on_device(z, labels).numpy()
        with torch.cuda.device(self.device), torch.cuda.stream(self._stream):
            if self._graphed is not None:
                return self._to_host(self._graphed(z, labels))
            on_device = None if labels is None else self._to_device(labels)
            return self._to_host(self._generate_on_device(self._latents_to_device(z), on_device))

    def _check_labels(self, labels: torch.Tensor | None, n: int) -> None:
        if self.n_classes and (labels is None or labels.shape != (n, self.n_classes)):
            got = "none" if labels is None else list(labels.shape)
            raise ValueError(f"a conditional generator takes class weights [{n}, {self.n_classes}], got {got}")
        if not self.n_classes and labels is not None:
            raise ValueError("an unconditional generator takes no labels")

    def score(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> np.ndarray:
        """Images [B, H, W, C] uint8, or points [B, in_dim] float32 -> raw critic scores [B] float32; for a
        conditional model, scores [B, n_classes] of each image against every class. (`labels` is there for the
        engine's runner signature: scoring takes none.)"""
        self._check_open()
        if labels is not None:
            raise ValueError("the critic scores every class; pick the label's score from its output")
        if self._stream is None:
            return self._score_on_device(x)
        with torch.cuda.device(self.device), torch.cuda.stream(self._stream):
            return self._score_on_device(x)

    def _score_on_device(self, x: torch.Tensor) -> np.ndarray:
        x = self._to_device(x)
        batch = from_uint8(x) if self.kind == "image" else x  # [B, C, H, W] or [B, in_dim]
        if isinstance(self.critic, _ScoresEveryClass) and self.n_classes:
            return self._to_host(self.critic.class_scores(batch.to(self.dtype)).float())  # [B, n_classes]
        return self._to_host(self.critic(batch.to(self.dtype)).float())  # [B]

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("this model version has retired: its runner is closed")

    def close(self) -> None:
        """Release what this version holds on its device, once its engine has stopped: the CUDA graphs (static
        buffers and each bucket's private pool), the staging buffer and the weights (moved to the meta device);
        on CUDA the allocator's cached blocks go back to the driver. The runner serves nothing after."""
        if self.closed:
            return
        self.closed = True
        if self._stream is not None:
            self._stream.synchronize()
        if self._graphed is not None:
            self._graphed.close()
            self._graphed = None
        self._staging = None
        self._host_buffers = None
        self.generator.to(device="meta")
        self.critic.to(device="meta")
        if self._cuda:
            with torch.cuda.device(self.device):
                torch.cuda.empty_cache()

    def warm_up(self, batch_sizes: list[int]) -> float:
        """Run both networks once at every batch size the engine will use (allocator, kernels, autotuning,
        compilation); returns the seconds it took."""
        started = time.perf_counter()
        with torch.inference_mode():
            for size in batch_sizes:
                labels = torch.eye(self.n_classes)[torch.arange(size) % self.n_classes] if self.n_classes else None
                self.generate(torch.zeros(size, self.z_dim), labels)
                self.score(torch.zeros(size, *self.score_item_shape, dtype=self.score_item_dtype))
        return time.perf_counter() - started


def warm_up_sizes(max_batch_size: int) -> list[int]:
    """Powers of two up to the largest batch, and the largest batch itself."""
    return bucket_sizes(max_batch_size)
