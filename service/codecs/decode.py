"""Decode uploaded images for the critic, refusing anything that is not a small, whole PNG, JPEG or WebP.

The pixel limit is checked from the header before any pixel is decoded (Pillow's own MAX_IMAGE_PIXELS is a
process-wide global, so it is not relied on), which stops decompression bombs: a few KB of PNG that would
expand to gigabytes.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from service.codecs.png_check import png_is_complete
from service.errors import InvalidRequestError, ServiceError

ResizeMode = Literal["error", "fit"]

_ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")


class UnsupportedImageError(ServiceError):
    status = 415
    code = "unsupported_image"


class CorruptImageError(InvalidRequestError):
    code = "corrupt_image"


class ImageTooLargeError(ServiceError):
    status = 413
    code = "image_too_large"


class ImageSizeError(InvalidRequestError):
    code = "wrong_image_size"


@dataclass(frozen=True)
class DecodeTarget:
    """What the model takes: every decoded image becomes [height, width, channels] uint8."""

    height: int
    width: int
    channels: int
    resize: ResizeMode
    max_pixels: int


def decode_image(data: bytes, target: DecodeTarget, index: int = 0) -> np.ndarray:
    """Bytes of one PNG/JPEG/WebP -> [H, W, C] uint8 for the model. `index` only names the image in errors.

    The image is first turned upright (EXIF orientation), 16-bit grey is scaled to 8 bits, transparency is
    composited over black, and palettes are expanded; animations are refused.
    """
    what = f"image {index}"
    try:
        image = Image.open(io.BytesIO(data), formats=_ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{what} is too large to decode: {exc}", {"index": index}) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UnsupportedImageError(
            f"{what} is not a PNG, JPEG or WebP image", {"index": index, "accepted": list(_ACCEPTED_FORMATS)}
        ) from exc
    with image:
        width, height = image.size
        if width * height > target.max_pixels:
            raise ImageTooLargeError(
                f"{what} is {width}x{height} = {width * height} pixels; the limit is {target.max_pixels}",
                {"index": index, "width": width, "height": height, "max_pixels": target.max_pixels},
            )
        frames = int(getattr(image, "n_frames", 1))
        if frames > 1:
            raise UnsupportedImageError(
                f"{what} is animated ({frames} frames); send a single still image", {"index": index, "frames": frames}
            )
        try:
            if _orientation(image) in _TRANSPOSING:
                width, height = height, width
            if (height, width) != (target.height, target.width) and target.resize != "fit":
                raise ImageSizeError(
                    f"{what} is {width}x{height} but the model takes {target.width}x{target.height}; "
                    'resize it or send "resize": "fit"',
                    {"index": index, "width": width, "height": height, "expected": [target.width, target.height]},
                )
            image.load()
            if image.format == "PNG" and not png_is_complete(data):
                raise CorruptImageError(
                    f"{what} could not be decoded (truncated or corrupt): its data holds fewer rows than its "
                    f"{width}x{height} header declares",
                    {"index": index},
                )
            converted = _to_model_mode(ImageOps.exif_transpose(image), target.channels)
        except ServiceError:
            raise
        except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
            raise CorruptImageError(
                f"{what} could not be decoded (truncated or corrupt): {exc}", {"index": index}
            ) from exc
    if converted.size != (target.width, target.height):
        converted = converted.resize((target.width, target.height), Image.Resampling.LANCZOS)
    pixels = np.asarray(converted, dtype=np.uint8)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels  # [H, W, C]


# EXIF orientations 5..8 swap width and height.
_TRANSPOSING = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION = 0x0112


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except (TypeError, ValueError):
        return 1


def _to_model_mode(image: Image.Image, channels: int) -> Image.Image:
    """Any decoded mode -> 8-bit L (1 channel) or RGB (3 channels)."""
    mode = "L" if channels == 1 else "RGB"
    if image.mode.startswith("I"):  # 16-bit grey PNG ("I;16*", or "I" holding 16-bit values)
        wide = np.asarray(image).astype(np.uint32)  # [H, W]
        image = Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8))
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return image.convert(mode)


def decode_images(blobs: list[bytes], target: DecodeTarget) -> np.ndarray:
    """Many uploads -> [N, H, W, C] uint8; the first bad one raises, naming its index."""
    out = np.empty((len(blobs), target.height, target.width, target.channels), dtype=np.uint8)
    for i, data in enumerate(blobs):
        out[i] = decode_image(data, target, i)
    return out


class InvalidBase64Error(InvalidRequestError):
    code = "invalid_base64"


def decode_base64(text: str, index: int = 0) -> bytes:
    """Standard base64, optionally as a data URL (`data:image/png;base64,...`)."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBase64Error(f"image {index} is not valid base64: {exc}", {"index": index}) from exc


def decode_base64_images(texts: list[str], target: DecodeTarget) -> np.ndarray:
    """Base64 strings -> [N, H, W, C] uint8."""
    return decode_images([decode_base64(t, i) for i, t in enumerate(texts)], target)
