"""POST /v1/interpolate: frame counts, end frames equal to the end points' samples, animations, point models."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from models import latents_for_seeds

pytestmark = pytest.mark.anyio


async def sample_png(client: httpx.AsyncClient, seed: int, truncation: float | None = None) -> str:
    body = {"seed": seed} if truncation is None else {"seed": seed, "truncation": truncation}
    return (await client.post("/v1/sample", json=body)).json()["images"][0]["data"]


@pytest.mark.parametrize(("n_points", "steps"), [(2, 2), (2, 5), (3, 4), (4, 3)])
async def test_frame_count_segments_and_t(client: httpx.AsyncClient, n_points: int, steps: int) -> None:
    points = [{"seed": 100 + i} for i in range(n_points)]
    response = await client.post("/v1/interpolate", json={"points": points, "steps": steps})
    assert response.status_code == 200, response.text
    frames = response.json()["frames"]
    assert len(frames) == (n_points - 1) * (steps - 1) + 1
    assert (frames[0]["segment"], frames[0]["t"]) == (0, 0.0)
    assert (frames[-1]["segment"], frames[-1]["t"]) == (n_points - 2, 1.0)
    per_segment = [sum(1 for f in frames if f["segment"] == s) for s in range(n_points - 1)]
    assert per_segment == [steps] + [steps - 1] * (n_points - 2)


async def test_end_and_key_frames_equal_the_samples_of_their_points(client: httpx.AsyncClient) -> None:
    for method in ("slerp", "lerp"):
        body = {"points": [{"seed": 1}, {"seed": 2}, {"seed": 3}], "steps": 4, "method": method}
        frames = (await client.post("/v1/interpolate", json=body)).json()["frames"]
        assert frames[0]["data"] == await sample_png(client, 1)
        assert frames[3]["data"] == await sample_png(client, 2)  # the shared keyframe, once
        assert frames[-1]["data"] == await sample_png(client, 3)
    cut = {"points": [{"seed": 1}, {"seed": 2}], "steps": 3, "truncation": 0.7}
    frames = (await client.post("/v1/interpolate", json=cut)).json()["frames"]
    assert frames[-1]["data"] == await sample_png(client, 2, truncation=0.7)


async def test_raw_latent_points_and_methods(client: httpx.AsyncClient) -> None:
    z_dim = (await client.get("/v1/models/digits")).json()["z_dim"]
    z1 = latents_for_seeds([8], z_dim)[0].tolist()
    mixed = {"points": [{"seed": 9}, {"latent": z1}], "steps": 5}
    slerp = (await client.post("/v1/interpolate", json=mixed)).json()["frames"]
    assert slerp[-1]["data"] == await sample_png(client, 8)
    lerp = (await client.post("/v1/interpolate", json={**mixed, "method": "lerp"})).json()["frames"]
    assert lerp[0]["data"] == slerp[0]["data"] and lerp[-1]["data"] == slerp[-1]["data"]
    assert any(a["data"] != b["data"] for a, b in zip(slerp[1:-1], lerp[1:-1], strict=True))


@pytest.mark.parametrize(
    ("fmt", "pillow_format", "media"), [("gif", "GIF", "image/gif"), ("webp", "WEBP", "image/webp")]
)
async def test_animations_are_raw_bytes_with_every_frame(
    client: httpx.AsyncClient, fmt: str, pillow_format: str, media: str
) -> None:
    body = {"points": [{"seed": 1}, {"seed": 2}, {"seed": 3}], "steps": 5, "format": fmt, "frame_ms": 40}
    response = await client.post("/v1/interpolate", json=body)
    assert response.status_code == 200 and response.headers["content-type"] == media
    animation = Image.open(io.BytesIO(response.content))
    assert animation.format == pillow_format and getattr(animation, "n_frames", 1) == 9
    first = np.asarray(animation.convert("L"))
    png = np.asarray(Image.open(io.BytesIO(base64.b64decode(await sample_png(client, 1)))))
    if fmt == "webp":  # lossless
        assert np.array_equal(first, png)


async def test_point_models_interpolate_points(client: httpx.AsyncClient) -> None:
    body = {"model": "ring", "points": [{"seed": 1}, {"latent": [0.5, -0.5]}], "steps": 3}
    frames = (await client.post("/v1/interpolate", json=body)).json()["frames"]
    assert len(frames) == 3 and all(len(f["point"]) == 2 for f in frames)
    first = (await client.post("/v1/sample", json={"model": "ring", "seed": 1})).json()["points"][0]["point"]
    # Matrix products may round differently with the batch size: points agree to float tolerance.
    assert np.allclose(frames[0]["point"], first, atol=1e-6)
    refused = await client.post("/v1/interpolate", json={**body, "format": "gif"})
    assert refused.status_code == 422


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"points": [{"seed": 1}], "steps": 3}, 422, "validation_error"),
        ({"points": [{"seed": 1}, {"seed": 2}], "steps": 1}, 422, "validation_error"),
        ({"points": [{"seed": 1}, {"seed": 2}], "steps": 10**9}, 422, "limit_exceeded"),
        ({"points": [{"seed": 1}, {"latent": [0.1, 0.2]}]}, 422, "invalid_request"),
        ({"points": [{"seed": 1}, {"seed": 2, "latent": [0.0]}]}, 422, "validation_error"),
        ({"points": [{"seed": 1}, {}]}, 422, "validation_error"),
        ({"points": [{"seed": 1}, {"seed": 2}], "method": "cubic"}, 422, "validation_error"),
        ({"points": [{"seed": 1}, {"seed": 2}], "format": "json"}, 422, "invalid_request"),
    ],
)
async def test_bad_interpolations_are_refused(client: httpx.AsyncClient, body: dict, status: int, code: str) -> None:
    response = await client.post("/v1/interpolate", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_non_finite_latents_are_refused(client: httpx.AsyncClient, bad: str) -> None:
    """NaN and Infinity are not JSON, and a number past float range would become one: the body is refused before
    any validation, at the position of the offending number."""
    z_dim = (await client.get("/v1/models/digits")).json()["z_dim"]
    latent = ", ".join([bad] + ["0"] * (z_dim - 1))
    raw = '{"points": [{"seed": 1}, {"latent": [' + latent + "]}]}"
    response = await client.post("/v1/interpolate", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "malformed_json"
    assert raw.index(bad) <= error["details"]["position"] <= raw.index(bad) + 1  # at the number or just past its sign
