"""The forward passes of one checkpoint on one device: the functions the batching engine calls with whole batches."""

from __future__ import annotations

import numpy as np
import torch

from models import Checkpoint, from_uint8, to_uint8


class ModelRunner:
    """Generator and critic moved to the serving device and dtype, with host transfers (pinned on CUDA)."""

    def __init__(self, checkpoint: Checkpoint, device: torch.device, dtype: torch.dtype) -> None:
        meta = checkpoint.metadata
        self.device = device
        self.dtype = dtype
        self.kind = meta.kind
        self.z_dim = meta.z_dim
        self.generator = checkpoint.generator.to(device=device, dtype=dtype).eval()
        self.critic = checkpoint.critic.to(device=device, dtype=dtype).eval()
        self._cuda = device.type == "cuda"
        if meta.kind == "image":
            assert meta.channels is not None and meta.height is not None and meta.width is not None
            # What `score` takes per item: 8-bit pixels, HWC.
            self.score_item_shape: tuple[int, ...] = (meta.height, meta.width, meta.channels)
            self.score_item_dtype = torch.uint8
        else:
            self.score_item_shape = (int(meta.generator.out_dim),)  # type: ignore[union-attr]
            self.score_item_dtype = torch.float32

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        if self._cuda:
            return x.pin_memory().to(self.device, non_blocking=True)
        return x

    def _to_host(self, y: torch.Tensor) -> np.ndarray:
        if self._cuda:
            host = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)
            host.copy_(y, non_blocking=True)
            torch.cuda.current_stream(self.device).synchronize()
            return host.numpy()
        return y.numpy()

    def generate(self, z: torch.Tensor) -> np.ndarray:
        """Latents [B, z_dim] float32 -> images [B, H, W, C] uint8, or points [B, out_dim] float32."""
        out = self.generator(self._to_device(z).to(self.dtype))
        if self.kind == "image":
            return self._to_host(to_uint8(out))  # [B, H, W, C]
        return self._to_host(out.float())  # [B, out_dim]

    def score(self, x: torch.Tensor) -> np.ndarray:
        """Images [B, H, W, C] uint8, or points [B, in_dim] float32 -> raw critic scores [B] float32."""
        x = self._to_device(x)
        batch = from_uint8(x) if self.kind == "image" else x  # [B, C, H, W] or [B, in_dim]
        return self._to_host(self.critic(batch.to(self.dtype)).float())  # [B]

    def warm_up(self, batch_sizes: list[int]) -> None:
        """Run both networks once at every batch size the engine will use (allocator, kernels, autotuning)."""
        with torch.inference_mode():
            for size in batch_sizes:
                self.generate(torch.zeros(size, self.z_dim))
                self.score(torch.zeros(size, *self.score_item_shape, dtype=self.score_item_dtype))


def warm_up_sizes(max_batch_size: int) -> list[int]:
    """Powers of two up to the largest batch, and the largest batch itself."""
    sizes = [1 << k for k in range(max_batch_size.bit_length()) if (1 << k) <= max_batch_size]
    if sizes[-1] != max_batch_size:
        sizes.append(max_batch_size)
    return sizes
