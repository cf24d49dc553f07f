"""POST /v1/score: JSON and multipart uploads, channel conversion, resizing, and every bad image."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from models import from_uint8, load_checkpoint

pytestmark = pytest.mark.anyio


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def header_only_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height, with a tiny IDAT: a few hundred bytes (a decompression bomb)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def digits_size(models_dir: Path) -> tuple[int, int]:
    meta = load_checkpoint(models_dir / "digits.safetensors").metadata
    assert meta.height is not None and meta.width is not None
    return meta.height, meta.width


def random_grey(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=size, dtype=np.uint8)  # [H, W]


async def test_json_scores_equal_the_critic_run_directly(
    client: httpx.AsyncClient, models_dir: Path, digits_size: tuple[int, int]
) -> None:
    images = [random_grey(digits_size, seed) for seed in range(3)]
    response = await client.post("/v1/score", json={"images": [b64(encode(a)) for a in images]})
    assert response.status_code == 200, response.text
    body = response.json()
    checkpoint = load_checkpoint(models_dir / "digits.safetensors")
    with torch.inference_mode():
        pixels = torch.from_numpy(np.stack(images)[:, :, :, None])  # [N, H, W, 1]
        expected = checkpoint.critic(from_uint8(pixels)).numpy()
    got = np.asarray([s["critic"] for s in body["scores"]])
    assert np.allclose(got, expected, atol=1e-4)
    percentiles = checkpoint.metadata.critic_reference.percentile(got)
    assert np.allclose([s["percentile"] for s in body["scores"]], percentiles)
    assert all(0.0 <= s["percentile"] <= 100.0 for s in body["scores"])


async def test_multipart_uploads_score_like_json(client: httpx.AsyncClient, digits_size: tuple[int, int]) -> None:
    data = encode(random_grey(digits_size, 5))
    as_json = (await client.post("/v1/score", json={"images": [b64(data)]})).json()["scores"][0]
    files = [("file", ("a.png", data, "image/png")), ("file", ("b.png", data, "image/png"))]
    response = await client.post("/v1/score", files=files, data={"model": "digits"})
    assert response.status_code == 200, response.text
    scores = response.json()["scores"]
    assert len(scores) == 2 and abs(scores[0]["critic"] - as_json["critic"]) < 1e-4
    unknown = await client.post("/v1/score", files=files, data={"colour": "red"})
    assert unknown.status_code == 422
    no_files = await client.post("/v1/score", files={"other": ("a.png", data)}, data={"model": "digits"})
    assert no_files.status_code == 422


async def test_rgb_jpeg_and_data_urls_are_converted(client: httpx.AsyncClient, digits_size: tuple[int, int]) -> None:
    grey = random_grey(digits_size, 2)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    grey_score = (await client.post("/v1/score", json={"images": [b64(encode(grey))]})).json()["scores"][0]["critic"]
    rgb_score = (await client.post("/v1/score", json={"images": [b64(encode(rgb))]})).json()["scores"][0]["critic"]
    assert abs(grey_score - rgb_score) < 1e-4
    url = "data:image/png;base64," + b64(encode(grey))
    assert (await client.post("/v1/score", json={"images": [url]})).status_code == 200
    jpeg = await client.post("/v1/score", json={"images": [b64(encode(rgb, "JPEG"))]})
    assert jpeg.status_code == 200


async def test_wrong_size_is_refused_unless_fit(client: httpx.AsyncClient, digits_size: tuple[int, int]) -> None:
    h, w = digits_size
    big = b64(encode(random_grey((h * 2, w * 3))))
    refused = await client.post("/v1/score", json={"images": [big]})
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "wrong_image_size" and error["details"]["expected"] == [w, h]
    fitted = await client.post("/v1/score", json={"images": [big], "resize": "fit"})
    assert fitted.status_code == 200


async def test_point_models_score_points(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/score", json={"model": "ring", "points": [[0.0, 1.0], [3.0, -2.0]]})
    assert response.status_code == 200, response.text
    assert len(response.json()["scores"]) == 2
    wrong_dim = await client.post("/v1/score", json={"model": "ring", "points": [[0.0, 1.0, 2.0]]})
    assert wrong_dim.status_code == 422
    images_to_points = await client.post("/v1/score", json={"model": "ring", "images": ["AAAA"]})
    assert images_to_points.status_code == 422
    points_to_images = await client.post("/v1/score", json={"model": "digits", "points": [[0.0, 1.0]]})
    assert points_to_images.status_code == 422


async def test_bad_images_get_their_own_status(client: httpx.AsyncClient, digits_size: tuple[int, int]) -> None:
    png = encode(random_grey(digits_size))
    cases = [
        ("not base64 at all!", 422, "invalid_base64"),
        (b64(b"this is plain text, not an image"), 415, "unsupported_image"),
        (b64(b"GIF89a" + b"\x00" * 40), 415, "unsupported_image"),
        (b64(png[: len(png) // 2]), 422, "corrupt_image"),
        (b64(header_only_png(20000, 20000)), 413, "image_too_large"),
        (b64(header_only_png(5000, 5000)), 413, "image_too_large"),
    ]
    for image, status, code in cases:
        response = await client.post("/v1/score", json={"images": [b64(png), image]})
        assert response.status_code == status, (code, response.text)
        error = response.json()["error"]
        assert error["code"] == code and error["details"]["index"] == 1
    assert len(header_only_png(20000, 20000)) < 5000
    assert (await client.post("/v1/score", json={"images": [b64(png)]})).status_code == 200


async def test_too_many_images_and_empty_lists(client: httpx.AsyncClient, digits_size: tuple[int, int]) -> None:
    png = b64(encode(random_grey(digits_size)))
    too_many = await client.post("/v1/score", json={"images": [png] * 65})
    assert too_many.status_code == 422 and too_many.json()["error"]["code"] == "limit_exceeded"
    empty = await client.post("/v1/score", json={"images": []})
    assert empty.status_code == 422
    neither = await client.post("/v1/score", json={"model": "digits"})
    assert neither.status_code == 422
    text = await client.post("/v1/score", content=b"hello", headers={"content-type": "text/plain"})
    assert text.status_code == 415
