"""One animated GIF or WebP from a sequence of frames."""

from __future__ import annotations

import io
from typing import Literal

import numpy as np

from service.codecs.images import to_pil

AnimationFormat = Literal["gif", "webp"]
ANIMATION_FORMATS: tuple[AnimationFormat, ...] = ("gif", "webp")


def as_animation_format(fmt: str) -> AnimationFormat:
    """`fmt` as an animation format; ValueError for anything else."""
    for known in ANIMATION_FORMATS:
        if fmt == known:
            return known
    raise ValueError(f"not an animation format: {fmt}")


def animate(frames: np.ndarray, fmt: AnimationFormat, frame_ms: int) -> bytes:
    """[F, H, W, C] uint8 -> an animation that loops forever, `frame_ms` per frame."""
    images = [to_pil(frame) for frame in frames]
    buffer = io.BytesIO()
    options: dict[str, object] = {"save_all": True, "append_images": images[1:], "duration": frame_ms, "loop": 0}
    if fmt == "webp":
        options["lossless"] = True
    images[0].save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue()
