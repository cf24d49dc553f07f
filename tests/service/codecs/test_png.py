"""The batch PNG writer produces files Pillow decodes back to the same pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.codecs.png import encode_png, encode_png_batch


@pytest.mark.parametrize("channels", [1, 3])
def test_round_trip_through_pillow(channels: int) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(4, 9, 13, channels), dtype=np.uint8)
    pixels[1] = 255  # flat images exercise the wrap-around of the Up filter
    files = encode_png_batch(pixels)
    assert len(files) == 4
    for data, want in zip(files, pixels, strict=True):
        image = Image.open(io.BytesIO(data))
        image.load()
        assert image.format == "PNG" and image.mode == ("L" if channels == 1 else "RGB")
        got = np.asarray(image)
        assert np.array_equal(got.reshape(want.shape), want)
    assert encode_png(pixels[2]) == files[2]


def test_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="1 or 3 channels"):
        encode_png_batch(np.zeros((1, 4, 4, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        encode_png_batch(np.zeros((1, 4, 4, 1), dtype=np.float32))
