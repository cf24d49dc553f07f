"""A client that goes away while its request waits in the queue costs no forward pass."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from service import create_app
from tests.service.app_client import make_settings, wait_ready

pytestmark = pytest.mark.anyio


async def call(app, body: bytes, leave_after: float | None) -> list[dict]:
    """One POST /v1/sample through the ASGI interface; the client disconnects `leave_after` seconds in."""
    sent: list[dict] = []
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        if leave_after is None:
            await asyncio.Event().wait()
        await asyncio.sleep(leave_after)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/sample", "raw_path": b"/v1/sample", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    await app(scope, receive, send)
    return sent


async def test_a_disconnected_request_is_dropped_before_its_forward_pass(models_dir: Path) -> None:
    # A long batching window keeps the request queued while its client leaves.
    settings = make_settings(models_dir, max_batch_size=64, max_wait_ms=400.0)
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            await wait_ready(client)

            async def computed() -> float:
                text = (await client.get("/metrics")).text
                families = {f.name: f for f in text_string_to_metric_families(text)}
                return sum(
                    s.value
                    for s in families["wgan_items"].samples
                    if s.name == "wgan_items_total" and s.labels == {"model": "digits", "op": "generate"}
                )

            before = await computed()
            gone = await call(manager.app, b'{"seed": 1, "n": 8}', leave_after=0.05)
            assert gone[0]["status"] == 499
            kept = await call(manager.app, b'{"seed": 1, "n": 8}', leave_after=None)
            assert kept[0]["status"] == 200
            assert await computed() - before == 8  # only the request whose client stayed was computed
