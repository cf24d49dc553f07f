"""GET /v1/models and /v1/models/{name}: every field the design lists, read from the checkpoints."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import pytest

from models import load_checkpoint

pytestmark = pytest.mark.anyio

FIELDS = {"name", "version", "kind", "z_dim", "channels", "height", "width", "device", "dtype", "loaded_at", "training"}


async def test_list_and_get_describe_each_checkpoint(client: httpx.AsyncClient, models_dir: Path) -> None:
    listing = (await client.get("/v1/models")).json()
    assert listing["default"] == "digits"
    assert [m["name"] for m in listing["models"]] == ["digits", "ring"]
    for info in listing["models"]:
        assert set(info) >= FIELDS
        checkpoint = load_checkpoint(models_dir / f"{info['name']}.safetensors")
        meta = checkpoint.metadata
        assert info["version"] == checkpoint.sha256[:12]
        assert (info["kind"], info["z_dim"], info["channels"], info["height"], info["width"]) == (
            meta.kind,
            meta.z_dim,
            meta.channels,
            meta.height,
            meta.width,
        )
        assert info["device"] == "cpu" and info["dtype"] == "float32"
        assert info["training"] == meta.training
        datetime.fromisoformat(info["loaded_at"])
        assert (await client.get(f"/v1/models/{info['name']}")).json() == info


async def test_unknown_model_is_404_with_the_names_available(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models/nope")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and error["details"]["available"] == ["digits", "ring"]
    for path, body in (
        ("/v1/sample", {"model": "nope"}),
        ("/v1/interpolate", {"model": "nope", "points": [{"seed": 1}, {"seed": 2}]}),
    ):
        assert (await client.post(path, json=body)).status_code == 404
