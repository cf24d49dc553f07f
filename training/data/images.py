"""Pixel plumbing shared by the image datasets: crop, resize, channel conversion, scaling to [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from models import from_uint8


def centre_crop_resize(image: Image.Image, resolution: int) -> Image.Image:
    """The largest centred square, resized to resolution x resolution."""
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = image.crop((left, top, left + side, top + side))
    if side == resolution:
        return square
    return square.resize((resolution, resolution), Image.Resampling.LANCZOS)


def as_mode(image: Image.Image, channels: int) -> Image.Image:
    """Grayscale ("L") for 1 channel, RGB for 3; transparency is composited over black."""
    if image.mode == "P" or image.mode in ("RGBA", "LA", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("L" if channels == 1 else "RGB")


def pil_to_uint8(images: list[Image.Image]) -> np.ndarray:
    """PIL images of one mode and size -> [N, H, W, C] uint8."""
    arrays = [np.asarray(im, dtype=np.uint8) for im in images]
    stacked = np.stack(arrays)
    return stacked[..., None] if stacked.ndim == 3 else stacked


def resize_uint8(pixels: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    """[N, H, W, C] uint8 -> [N, R, R, channels] uint8: centre-cropped, resized, channel-converted."""
    _, h, w, c = pixels.shape
    if (h, w, c) == (resolution, resolution, channels):
        return pixels
    mode = "L" if c == 1 else "RGB"
    out = []
    for frame in pixels:
        image = Image.fromarray(frame[..., 0] if c == 1 else frame, mode=mode)
        out.append(as_mode(centre_crop_resize(image, resolution), channels))
    return pil_to_uint8(out)


def uint8_to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """[N, H, W, C] uint8 -> float32 [N, C, H, W] in [-1, 1]."""
    return from_uint8(torch.from_numpy(np.ascontiguousarray(pixels)))
