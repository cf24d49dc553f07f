"""Helpers of the service tests: settings for a test app, and the ASGI app running with its lifespan."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import torch
from asgi_lifespan import LifespanManager

from service import ServiceSettings, create_app
from service.runtime import Drain


def make_settings(models_dir: Path, **overrides: Any) -> ServiceSettings:
    """Settings for a test app: given explicitly, so a developer's WGAN_* variables do not leak in."""
    values: dict[str, Any] = {
        "models_dir": models_dir,
        "device": "cpu",
        "dtype": "float32",
        "max_batch_size": 16,
        "max_wait_ms": 5.0,
        "api_keys": [],
        "default_model": None,
        "codec_threads": 2,
        "warmup": True,
        # torch's thread count is process-wide: leave the test process's as it is.
        "torch_threads": torch.get_num_threads(),
        **overrides,
    }
    return ServiceSettings(**values)


async def wait_ready(client: httpx.AsyncClient, timeout: float = 60.0) -> httpx.Response:
    """Poll /readyz until loading has finished (200, or 503 with a final state such as no_models)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get("/readyz")
        if response.status_code == 200 or response.json()["status"] != "loading":
            return response
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not finish loading")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def serve_in_process(settings: ServiceSettings, drain: Drain | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The ASGI app with its lifespan running, and an httpx client speaking to it; yields once loading is done."""
    app = create_app(settings, drain)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service.test", timeout=30) as client:
            await wait_ready(client)
            yield client
