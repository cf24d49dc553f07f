"""A client that goes away while its request waits in the queue costs no forward pass."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from service import create_app
from tests.service.app_client import make_settings, wait_ready
from tests.service.asgi_calls import body_then_leave, post_sample

pytestmark = pytest.mark.anyio


async def test_a_disconnected_request_is_dropped_before_its_forward_pass(models_dir: Path) -> None:
    # A long batching window keeps the request queued while its client leaves.
    settings = make_settings(models_dir, max_batch_size=64, max_wait_ms=400.0)
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client,
    ):
        await wait_ready(client)

        async def counted(name: str, labels: dict[str, str]) -> float:
            families = text_string_to_metric_families((await client.get("/metrics")).text)
            return sum(s.value for f in families for s in f.samples if s.name == name and s.labels == labels)

        items = ("wgan_items_total", {"model": "digits", "op": "generate"})
        before = await counted(*items)
        body = b'{"seed": 1, "n": 8}'
        gone = await post_sample(manager.app, body_then_leave(body, 0.05), len(body))
        assert gone[0]["status"] == 499
        kept = await post_sample(manager.app, body_then_leave(body, None), len(body))
        assert kept[0]["status"] == 200
        assert await counted(*items) - before == 8  # only the request whose client stayed was computed
        assert await counted("wgan_requests_total", {"endpoint": "/v1/sample", "status": "499"}) == 1
