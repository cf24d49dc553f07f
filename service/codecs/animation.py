"""One animated GIF or WebP from a sequence of frames."""

from __future__ import annotations

import io
from typing import Literal

import numpy as np

from service.codecs.images import to_pil

AnimationFormat = Literal["gif", "webp"]


def animate(frames: np.ndarray, fmt: AnimationFormat, frame_ms: int) -> bytes:
    """[F, H, W, C] uint8 -> an animation that loops forever, `frame_ms` per frame."""
    images = [to_pil(frame) for frame in frames]
    buffer = io.BytesIO()
    options: dict[str, object] = {"save_all": True, "append_images": images[1:], "duration": frame_ms, "loop": 0}
    if fmt == "webp":
        options["lossless"] = True
    images[0].save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue()
