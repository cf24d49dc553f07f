"""End to end: `wgan-serve` as a real process on 127.0.0.1, every endpoint over HTTP, batching observed in /metrics."""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.processes import Replica
from tests.e2e.serve_process import start_serve

KEY = "e2e-secret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tiny_image_checkpoint: Path, tiny_points_checkpoint: Path
) -> Iterator[Replica]:
    folder = tmp_path_factory.mktemp("e2e_models")
    shutil.copy(tiny_image_checkpoint, folder / "digits.safetensors")
    shutil.copy(tiny_points_checkpoint, folder / "ring.safetensors")
    (folder / "broken.safetensors").write_bytes(b"\x00" * 64)
    log = folder.parent / "wgan-serve.log"
    process = start_serve(
        folder, log, "--max-batch-size", "64", "--max-wait-ms", "20", "--api-keys", KEY, "--torch-threads", "1"
    )
    yield process
    assert process.stop() == 0, log.read_text()  # SIGTERM drains and exits cleanly
    text = log.read_text()
    assert "Application shutdown complete" in text and "Traceback" not in text
    assert KEY not in text


@pytest.fixture
def http(server: Replica) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        yield client


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_operations_endpoints_and_models(http: httpx.Client, server: Replica) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200 and ready.json()["models"] == ["digits", "ring"]  # broken file skipped
    assert httpx.get(f"{server.url}/v1/models").status_code == 401
    listing = http.get("/v1/models").json()
    assert listing["default"] == "digits" and [m["name"] for m in listing["models"]] == ["digits", "ring"]
    assert http.get("/v1/models/ring").json()["kind"] == "points"
    assert http.get("/v1/models/broken").status_code == 404
    assert "wgan_model_info" in httpx.get(f"{server.url}/metrics").text
    assert "broken.safetensors" in server.log.read_text()


def test_sample_interpolate_and_score_over_http(http: httpx.Client) -> None:
    info = http.get("/v1/models/digits").json()
    shape = (info["height"], info["width"])
    body = http.post("/v1/sample", json={"seed": 3, "n": 2, "return_latents": True}).json()
    assert [i["seed"] for i in body["images"]] == [3, 4] and len(body["images"][0]["latent"]) == info["z_dim"]
    raw = http.post("/v1/sample", json={"seed": 3}, headers={"Accept": "image/png"})
    assert raw.headers["content-type"] == "image/png" and raw.headers["x-seeds"] == "3"
    assert base64.b64encode(raw.content).decode() == body["images"][0]["data"]
    grid = http.post("/v1/sample", json={"seed": 3, "n": 4, "grid": True})
    assert pixels(grid.content).shape == (2 * shape[0] + 2, 2 * shape[1] + 2)

    frames = http.post("/v1/interpolate", json={"points": [{"seed": 3}, {"seed": 4}], "steps": 6}).json()["frames"]
    assert len(frames) == 6
    assert frames[0]["data"] == body["images"][0]["data"] and frames[-1]["data"] == body["images"][1]["data"]
    gif = http.post("/v1/interpolate", json={"points": [{"seed": 3}, {"seed": 4}], "format": "gif", "steps": 4})
    assert (
        gif.headers["content-type"] == "image/gif" and getattr(Image.open(io.BytesIO(gif.content)), "n_frames", 1) == 4
    )

    scored = http.post("/v1/score", json={"images": [body["images"][0]["data"]]}).json()["scores"]
    uploaded = http.post("/v1/score", files={"file": ("x.png", raw.content, "image/png")}).json()["scores"]
    assert abs(scored[0]["critic"] - uploaded[0]["critic"]) < 1e-5 and 0 <= scored[0]["percentile"] <= 100
    points = http.post("/v1/score", json={"model": "ring", "points": [[0.0, 0.5]]}).json()["scores"]
    assert len(points) == 1
    ring = http.post("/v1/sample", json={"model": "ring", "n": 3, "seed": 1}).json()["points"]
    assert len(ring) == 3 and len(ring[0]["point"]) == 2


def test_bad_input_never_takes_the_server_down(http: httpx.Client, server: Replica) -> None:
    assert http.post("/v1/sample", content=b"{nope", headers={"content-type": "application/json"}).status_code == 400
    assert http.post("/v1/sample", json={"n": 0}).status_code == 422
    assert http.post("/v1/sample", json={"nonsense": True}).status_code == 422
    huge = http.post("/v1/score", content=b"x" * (17 * 1024 * 1024), headers={"content-type": "application/json"})
    assert huge.status_code == 413
    assert http.post("/v1/score", json={"images": ["bm90IGFuIGltYWdl"]}).status_code == 415
    assert http.post("/v1/sample", json={"seed": 1}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert server.proc.poll() is None
    assert http.post("/v1/sample", json={"seed": 1}).status_code == 200


def test_concurrent_seeded_requests_equal_sequential_ones_and_share_batches(server: Replica) -> None:
    seeds = list(range(1000, 1064))

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=60, limits=limits) as client:
            return await asyncio.gather(*(client.post("/v1/sample", json={"seed": s}) for s in seeds))

    concurrent = asyncio.run(burst())
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        one_by_one = [client.post("/v1/sample", json={"seed": s}) for s in seeds]
        metrics_text = client.get("/metrics").text
    for seed, a, b in zip(seeds, concurrent, one_by_one, strict=True):
        assert a.status_code == 200 and b.status_code == 200
        assert a.json()["images"][0]["seed"] == seed
        assert a.json()["images"][0]["data"] == b.json()["images"][0]["data"], f"seed {seed} differs"

    families = {f.name: f for f in text_string_to_metric_families(metrics_text)}
    buckets = {
        float(s.labels["le"]): s.value
        for s in families["wgan_batch_size"].samples
        if s.name == "wgan_batch_size_bucket" and (s.labels["model"], s.labels["op"]) == ("digits", "generate")
    }
    batches, batches_of_one = buckets[float("inf")], buckets[1.0]
    assert batches > batches_of_one, "the burst of 64 must have produced batches larger than one"
    requests = {
        (s.labels["endpoint"], s.labels["status"]): s.value
        for s in families["wgan_requests"].samples
        if s.name == "wgan_requests_total"
    }
    assert requests[("/v1/sample", "200")] >= 128
