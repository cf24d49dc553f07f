"""Decoding uploads: conversion, resizing, and refusals checked before any pixel is decoded."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.codecs.decode import (
    CorruptImageError,
    DecodeTarget,
    ImageSizeError,
    ImageTooLargeError,
    InvalidBase64Error,
    UnsupportedImageError,
    decode_base64,
    decode_image,
)


def png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


GREY = DecodeTarget(height=8, width=8, channels=1, resize="error", max_pixels=10_000)
RGB = DecodeTarget(height=8, width=8, channels=3, resize="error", max_pixels=10_000)


def test_channels_are_converted_both_ways() -> None:
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    grey = decode_image(png(rgb), GREY)
    assert grey.shape == (8, 8, 1) and grey.dtype == np.uint8 and int(grey[0, 0, 0]) == 76  # ITU-R 601 luma of red
    back = decode_image(png(np.full((8, 8), 200, dtype=np.uint8)), RGB)
    assert back.shape == (8, 8, 3) and (back == 200).all()
    rgba = np.full((8, 8, 4), 10, dtype=np.uint8)
    assert decode_image(png(rgba), RGB).shape == (8, 8, 3)


def test_size_is_checked_unless_fit() -> None:
    big = png(np.zeros((16, 24), dtype=np.uint8))
    with pytest.raises(ImageSizeError, match="24x16"):
        decode_image(big, GREY)
    fitted = decode_image(big, DecodeTarget(8, 8, 1, "fit", 10_000))
    assert fitted.shape == (8, 8, 1)


def test_the_pixel_limit_applies_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match="limit is 100"):
        decode_image(png(np.zeros((20, 20), dtype=np.uint8)), DecodeTarget(8, 8, 1, "fit", 100))


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"plain text", UnsupportedImageError),
        (b"", UnsupportedImageError),
        (b"BM" + b"\x00" * 60, UnsupportedImageError),
    ],
)
def test_non_images_are_unsupported(data: bytes, error: type) -> None:
    with pytest.raises(error):
        decode_image(data, GREY)


def test_bmp_is_not_accepted_even_though_pillow_reads_it() -> None:
    with pytest.raises(UnsupportedImageError):
        decode_image(png(np.zeros((8, 8), dtype=np.uint8), "BMP"), GREY)


def test_a_truncated_png_is_corrupt() -> None:
    data = png(np.random.default_rng(1).integers(0, 256, (8, 8), dtype=np.uint8))
    with pytest.raises(CorruptImageError, match="truncated or corrupt"):
        decode_image(data[: len(data) - 30], GREY)


def test_base64() -> None:
    assert decode_base64("aGVsbG8=") == b"hello"
    assert decode_base64("data:image/png;base64,aGVsbG8=") == b"hello"
    with pytest.raises(InvalidBase64Error):
        decode_base64("not base64!")
