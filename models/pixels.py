"""Conversions between generator outputs in [-1, 1] and 8-bit pixels."""

from __future__ import annotations

import torch


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] float in [-1, 1] -> [N, H, W, C] uint8, contiguous, same device."""
    scaled = (images.float().clamp(-1, 1) + 1) * 127.5
    return scaled.round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()  # [N, H, W, C]


def from_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """[N, H, W, C] uint8 -> [N, C, H, W] float32 in [-1, 1]."""
    return pixels.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0).contiguous()  # [N, C, H, W]
