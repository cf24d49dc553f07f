"""Encoding batches into every API format, grids and animations."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.codecs.animation import AnimationFormat, animate
from service.codecs.images import ImageFormat, encode_images, grid


@pytest.fixture
def pixels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(5, 8, 6, 3), dtype=np.uint8)  # [N, H, W, C]


@pytest.mark.parametrize(("fmt", "pillow_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_image_formats(pixels: np.ndarray, fmt: ImageFormat, pillow_format: str) -> None:
    files = encode_images(pixels, fmt)
    assert len(files) == 5
    for data in files:
        image = Image.open(io.BytesIO(data))
        assert image.format == pillow_format and image.size == (6, 8)


def test_npy_holds_the_array(pixels: np.ndarray) -> None:
    for data, want in zip(encode_images(pixels, "npy"), pixels, strict=True):
        assert np.array_equal(np.load(io.BytesIO(data), allow_pickle=False), want)


def test_grid_is_near_square_with_gaps(pixels: np.ndarray) -> None:
    mosaic = grid(pixels)
    assert mosaic.shape == (2 * 8 + 2, 3 * 6 + 4, 3)
    assert np.array_equal(mosaic[10:18, 8:14], pixels[4])
    assert (mosaic[8:10] == 0).all()
    assert grid(pixels[:1]).shape == (8, 6, 3)


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_animations_hold_every_frame(pixels: np.ndarray, fmt: AnimationFormat) -> None:
    data = animate(pixels, fmt, frame_ms=50)
    image = Image.open(io.BytesIO(data))
    assert getattr(image, "n_frames", 1) == 5 and image.info.get("loop") == 0
