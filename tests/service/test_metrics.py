"""Metrics: the design's names, on a registry per app, with bounded labels."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.service.app_client import make_settings, serve_in_process

pytestmark = pytest.mark.anyio

NAMES = {
    "wgan_requests",
    "wgan_request_duration_seconds",
    "wgan_queue_depth",
    "wgan_queue_wait_seconds",
    "wgan_batch_size",
    "wgan_inference_seconds",
    "wgan_items",
    "wgan_model_info",
}


async def scrape(client) -> dict:
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


async def test_two_apps_in_one_process_keep_their_own_metrics(models_dir: Path) -> None:
    async with (
        serve_in_process(make_settings(models_dir)) as first,
        serve_in_process(make_settings(models_dir)) as second,
    ):
        for seed in range(3):
            assert (await first.post("/v1/sample", json={"seed": seed})).status_code == 200
        await first.post("/v1/sample", json={"model": "nope"})
        await first.get(f"/no/such/path/{12345}")
        mine, theirs = await scrape(first), await scrape(second)
    assert set(mine) >= NAMES and set(theirs) >= NAMES
    counts = {
        (s.labels["endpoint"], s.labels["status"]): s.value
        for s in mine["wgan_requests"].samples
        if s.name == "wgan_requests_total"
    }
    assert counts[("/v1/sample", "200")] == 3
    assert counts[("/v1/sample", "404")] == 1
    assert counts[("unmatched", "404")] == 1
    other = {
        (s.labels["endpoint"], s.labels["status"])
        for s in theirs["wgan_requests"].samples
        if s.name == "wgan_requests_total"
    }
    assert ("/v1/sample", "200") not in other
    items = {
        (s.labels["model"], s.labels["op"]): s.value for s in mine["wgan_items"].samples if s.name == "wgan_items_total"
    }
    assert items[("digits", "generate")] >= 3
    assert {s.labels["model"] for s in mine["wgan_model_info"].samples} == {"digits", "ring"}
    info = next(s for s in mine["wgan_model_info"].samples if s.labels["model"] == "digits")
    assert info.value == 1 and info.labels["device"] == "cpu" and info.labels["dtype"] == "float32"
    # Labels never carry a raw path, a seed or a requested model name.
    label_values = {v for f in mine.values() for s in f.samples for v in s.labels.values()}
    assert not any("12345" in v or v == "nope" for v in label_values)


async def test_batches_of_concurrent_requests_are_counted(models_dir: Path) -> None:
    async with serve_in_process(make_settings(models_dir, max_wait_ms=30.0)) as client:
        responses = await asyncio.gather(*(client.post("/v1/sample", json={"seed": s}) for s in range(24)))
        assert all(r.status_code == 200 for r in responses)
        families = await scrape(client)
    buckets = {
        s.labels["le"]: s.value
        for s in families["wgan_batch_size"].samples
        if s.name == "wgan_batch_size_bucket" and s.labels["model"] == "digits" and s.labels["op"] == "generate"
    }
    # Warm-up runs the networks directly, so every batch here is one of the 24 requests' batches.
    assert buckets["+Inf"] < 24, "some requests must have shared a forward pass"
    assert buckets["1.0"] < buckets["+Inf"]
