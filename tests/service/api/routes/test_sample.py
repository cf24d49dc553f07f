"""POST /v1/sample against the trainer's real checkpoints, in-process with the lifespan running."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from models import latents_for_seeds, load_checkpoint
from service.inference import ForwardOptions, ModelRunner
from tests.service.app_client import make_settings, serve_in_process

CPU = torch.device("cpu")

pytestmark = pytest.mark.anyio


def png_pixels(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    array = np.asarray(image)
    return array[:, :, None] if array.ndim == 2 else array  # [H, W, C]


def decoded(item: dict) -> np.ndarray:
    return png_pixels(base64.b64decode(item["data"]))


async def geometry(client: httpx.AsyncClient, name: str = "digits") -> dict:
    return (await client.get(f"/v1/models/{name}")).json()


async def test_seeded_images_match_the_generator_run_directly(client: httpx.AsyncClient, models_dir: Path) -> None:
    response = await client.post("/v1/sample", json={"model": "digits", "n": 3, "seed": 40})
    assert response.status_code == 200, response.text
    body = response.json()
    info = await geometry(client)
    assert body["model"] == "digits" and body["version"] == info["version"] and body["format"] == "png"
    assert [item["seed"] for item in body["images"]] == [40, 41, 42]
    # The app's default backend (`auto`: ONNX Runtime on the CPU), run directly; against eager PyTorch its pixels
    # may differ by one level on a few pixels (tests/service/inference/test_runner.py checks that tolerance).
    runner = ModelRunner(load_checkpoint(models_dir / "digits.safetensors"), CPU, torch.float32, ForwardOptions("auto"))
    with torch.inference_mode():
        expected = runner.generate(latents_for_seeds([40, 41, 42], info["z_dim"]))  # [3, H, W, C]
    for item, want in zip(body["images"], expected, strict=True):
        pixels = decoded(item)
        assert pixels.shape == (info["height"], info["width"], info["channels"])
        assert np.array_equal(pixels, want)


async def test_a_seed_gives_the_same_image_alone_and_inside_a_crowded_batch(client: httpx.AsyncClient) -> None:
    alone = [(await client.post("/v1/sample", json={"seed": s})).json()["images"][0] for s in (7, 8, 9)]
    crowd = await asyncio.gather(*(client.post("/v1/sample", json={"seed": s}) for s in range(40)))
    together = {r.json()["images"][0]["seed"]: r.json()["images"][0] for r in crowd}
    for item in alone:
        assert together[item["seed"]]["data"] == item["data"]
    many = (await client.post("/v1/sample", json={"seeds": [9, 100, 7, 8]})).json()["images"]
    assert [m["seed"] for m in many] == [9, 100, 7, 8]
    assert many[2]["data"] == alone[0]["data"] and many[0]["data"] == alone[2]["data"]


async def test_the_server_draws_a_seed_and_returns_it(client: httpx.AsyncClient) -> None:
    first = (await client.post("/v1/sample", json={"n": 2})).json()["images"]
    seed = first[0]["seed"]
    assert isinstance(seed, int) and first[1]["seed"] == seed + 1
    again = (await client.post("/v1/sample", json={"seed": seed, "n": 2})).json()["images"]
    assert [i["data"] for i in again] == [i["data"] for i in first]


async def test_latents_and_truncation(client: httpx.AsyncClient) -> None:
    z_dim = (await geometry(client))["z_dim"]
    plain = (await client.post("/v1/sample", json={"seed": 3, "return_latents": True})).json()["images"][0]
    assert np.allclose(plain["latent"], latents_for_seeds([3], z_dim)[0].numpy())
    cut = (await client.post("/v1/sample", json={"seed": 3, "truncation": 0.5, "return_latents": True})).json()
    latent = np.asarray(cut["images"][0]["latent"])
    assert latent.shape == (z_dim,) and np.abs(latent).max() <= 0.5
    assert np.allclose(latent, latents_for_seeds([3], z_dim, truncation=0.5)[0].numpy())
    assert "latent" not in (await client.post("/v1/sample", json={"seed": 3})).json()["images"][0]


@pytest.mark.parametrize(("fmt", "pillow_format"), [("jpeg", "JPEG"), ("webp", "WEBP")])
async def test_lossy_formats_decode_to_the_model_size(client: httpx.AsyncClient, fmt: str, pillow_format: str) -> None:
    info = await geometry(client)
    body = (await client.post("/v1/sample", json={"seed": 1, "n": 2, "format": fmt})).json()
    assert body["format"] == fmt
    for item in body["images"]:
        image = Image.open(io.BytesIO(base64.b64decode(item["data"])))
        assert image.format == pillow_format and image.size == (info["width"], info["height"])


async def test_npy_is_the_uint8_hwc_array_of_the_png(client: httpx.AsyncClient) -> None:
    png = (await client.post("/v1/sample", json={"seed": 11})).json()["images"][0]
    npy = (await client.post("/v1/sample", json={"seed": 11, "format": "npy"})).json()["images"][0]
    array = np.load(io.BytesIO(base64.b64decode(npy["data"])), allow_pickle=False)
    assert array.dtype == np.uint8 and np.array_equal(array, decoded(png))


async def test_accept_image_png_returns_raw_bytes_with_the_seed_header(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/sample", json={"seed": 21}, headers={"Accept": "image/png"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-seeds"] == "21"
    as_json = (await client.post("/v1/sample", json={"seed": 21})).json()["images"][0]
    assert base64.b64encode(response.content).decode() == as_json["data"]
    refused = await client.post("/v1/sample", json={"seed": 21, "n": 2}, headers={"Accept": "image/png"})
    assert refused.status_code == 406 and refused.json()["error"]["code"] == "not_acceptable"


async def test_grid_is_one_png_holding_every_image(client: httpx.AsyncClient) -> None:
    info = await geometry(client)
    response = await client.post("/v1/sample", json={"seed": 5, "n": 5, "grid": True})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-seeds"] == "5,6,7,8,9"
    grid = png_pixels(response.content)
    h, w = info["height"], info["width"]
    assert grid.shape == (2 * h + 2, 3 * w + 4, info["channels"])  # 3 columns, 2 rows, 2-pixel gaps
    singles = (await client.post("/v1/sample", json={"seed": 5, "n": 5})).json()["images"]
    assert np.array_equal(grid[:h, :w], decoded(singles[0]))
    assert np.array_equal(grid[h + 2 :, w + 2 : 2 * w + 2], decoded(singles[4]))
    bad = await client.post("/v1/sample", json={"n": 2, "grid": True, "format": "jpeg"})
    assert bad.status_code == 422


async def test_point_models_return_points_as_json_or_npy(client: httpx.AsyncClient, models_dir: Path) -> None:
    info = await geometry(client, "ring")
    assert info["kind"] == "points" and info["channels"] is None
    body = (await client.post("/v1/sample", json={"model": "ring", "seeds": [1, 2], "return_latents": True})).json()
    assert body["format"] == "json" and "images" not in body
    checkpoint = load_checkpoint(models_dir / "ring.safetensors")
    with torch.inference_mode():
        expected = checkpoint.generator(latents_for_seeds([1, 2], info["z_dim"])).numpy()
    got = np.asarray([p["point"] for p in body["points"]])
    # atol: the app runs ONNX Runtime by default (`auto`), whose float sums may round apart from eager PyTorch's.
    assert got.shape == (2, info["data_dim"]) and np.allclose(got, expected, atol=1e-5)
    assert len(body["points"][0]["latent"]) == info["z_dim"]
    npy = (await client.post("/v1/sample", json={"model": "ring", "seed": 1, "format": "npy"})).json()
    point = np.load(io.BytesIO(base64.b64decode(npy["points"][0]["data"])))
    assert point.dtype == np.float32 and np.allclose(point, expected[0], atol=1e-5)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "ring", "format": "png"},
        {"model": "ring", "grid": True},
        {"model": "digits", "format": "json"},
        {"seed": 1, "return_latents": True, "grid": True},
    ],
)
async def test_formats_that_do_not_apply_are_refused(client: httpx.AsyncClient, body: dict) -> None:
    response = await client.post("/v1/sample", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


async def test_a_full_queue_answers_503_with_retry_after(models_dir: Path) -> None:
    async with serve_in_process(make_settings(models_dir, max_queue_items=4, retry_after_s=3)) as client:
        response = await client.post("/v1/sample", json={"n": 5})
        assert response.status_code == 503 and response.headers["retry-after"] == "3"
        assert response.json()["error"]["code"] == "overloaded"
        assert (await client.post("/v1/sample", json={"n": 4})).status_code == 200


async def test_an_item_past_its_queue_deadline_gets_504(models_dir: Path) -> None:
    # A batching window far longer than the deadline: the item expires in the queue and is never computed.
    settings = make_settings(models_dir, max_queue_ms=20.0, max_wait_ms=500.0)
    async with serve_in_process(settings) as client:
        response = await client.post("/v1/sample", json={"seed": 1})
        assert response.status_code == 504 and response.json()["error"]["code"] == "queue_timeout"


async def test_accept_alone_can_pick_the_raw_format(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/sample", json={"seed": 2}, headers={"Accept": "image/webp"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(response.content)).format == "WEBP"
    both = await client.post("/v1/sample", json={"seed": 2}, headers={"Accept": "image/png, application/json"})
    assert both.headers["content-type"] == "application/json"
