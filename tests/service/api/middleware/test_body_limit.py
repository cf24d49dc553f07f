"""Request bodies over max_body_bytes are refused with 413, declared or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.service.app_client import make_settings, serve_in_process

pytestmark = pytest.mark.anyio


async def test_bodies_over_the_limit_get_413_and_the_server_keeps_serving(models_dir: Path) -> None:
    async with serve_in_process(make_settings(models_dir, max_body_bytes=2000)) as client:
        padding = "x" * 3000
        declared = await client.post("/v1/score", json={"images": [padding]})
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "payload_too_large"

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"images": ["'
            for _ in range(10):
                yield b"A" * 400
            yield b'"]}'

        streamed = await client.post("/v1/score", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        small = await client.post("/v1/sample", json={"seed": 1, "n": 2})
        assert small.status_code == 200
