"""Encode batches of 8-bit images into the formats the API offers, and tile a batch into one grid."""

from __future__ import annotations

import io
import math
from typing import Literal

import numpy as np
from PIL import Image

from service.codecs.npy import encode_npy_batch
from service.codecs.png import encode_png_batch

ImageFormat = Literal["png", "jpeg", "webp", "npy"]
IMAGE_FORMATS: tuple[ImageFormat, ...] = ("png", "jpeg", "webp", "npy")


def as_image_format(fmt: str) -> ImageFormat:
    """`fmt` as an image format; ValueError for anything else (callers check formats against the model first)."""
    for known in IMAGE_FORMATS:
        if fmt == known:
            return known
    raise ValueError(f"not an image format: {fmt}")


MEDIA_TYPES: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "npy": "application/x-npy",
    "gif": "image/gif",
}

_QUALITY = 90
_GRID_PAD = 2


def to_pil(pixels: np.ndarray) -> Image.Image:
    """[H, W, C] uint8 -> a Pillow image in mode L (C = 1) or RGB (C = 3)."""
    return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0] if pixels.shape[-1] == 1 else pixels))


def _encode_with_pillow(pixels: np.ndarray, fmt: str) -> list[bytes]:
    out = []
    for item in pixels:
        buffer = io.BytesIO()
        to_pil(item).save(buffer, format=fmt.upper(), quality=_QUALITY)
        out.append(buffer.getvalue())
    return out


def encode_images(pixels: np.ndarray, fmt: ImageFormat) -> list[bytes]:
    """[N, H, W, C] uint8 -> N encoded files (npy: the uint8 [H, W, C] array itself)."""
    if fmt == "png":
        return encode_png_batch(pixels)
    if fmt == "npy":
        return encode_npy_batch(pixels)
    return _encode_with_pillow(pixels, fmt)


def grid(pixels: np.ndarray) -> np.ndarray:
    """[N, H, W, C] -> one [rows*(H+pad)-pad, cols*(W+pad)-pad, C] near-square mosaic, row by row, black gaps."""
    n, h, w, c = pixels.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = np.zeros((rows * (h + _GRID_PAD) - _GRID_PAD, cols * (w + _GRID_PAD) - _GRID_PAD, c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        y, x = r * (h + _GRID_PAD), k * (w + _GRID_PAD)
        out[y : y + h, x : x + w] = pixels[i]
    return out
