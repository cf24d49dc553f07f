"""The folder `make serve` and the Docker image serve: every bundled checkpoint side by side, and a request that
names no model still gets the unconditional mnist5k model (the first name in sorted order)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.service.app_client import make_settings, serve_in_process

pytestmark = pytest.mark.anyio

BUNDLED = Path(__file__).resolve().parents[2] / "bundled_models"


def test_the_bundled_folder_holds_the_unconditional_and_the_conditional_model() -> None:
    assert sorted(p.name for p in BUNDLED.glob("*.safetensors")) == ["mnist5k-cond.safetensors", "mnist5k.safetensors"]


async def test_a_request_without_a_model_name_gets_the_unconditional_bundled_model() -> None:
    settings = make_settings(BUNDLED, reload_poll_s=0, warmup=False, backend="eager")
    async with serve_in_process(settings) as client:
        assert (await client.get("/readyz")).status_code == 200
        listing = (await client.get("/v1/models")).json()
        assert listing["default"] == "mnist5k" and "mnist5k" in [m["name"] for m in listing["models"]]
        answer = await client.post("/v1/sample", json={"seed": 3})
        assert answer.status_code == 200
        version = hashlib.sha256((BUNDLED / "mnist5k.safetensors").read_bytes()).hexdigest()[:12]
        assert answer.json()["version"] == version
