"""A worker's app and its link to the supervisor, with the test in the supervisor's place on the other end of the
control channel: /readyz waits for every worker's ready file, and a reload is asked of the supervisor, whose
gathered answer the response merges."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from service import create_app
from service.workers.link import WorkerIdentity, WorkerLink
from service.workers.state_dir import StateDir
from tests.service.app_client import make_settings

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": "Bearer admin-link-3f9"}


@asynccontextmanager
async def worker_app(
    models_dir: Path, state: StateDir, orphaned: list[str]
) -> AsyncIterator[tuple[httpx.AsyncClient, asyncio.StreamReader, asyncio.StreamWriter]]:
    """Worker 0 of 2, its client, and the supervisor's end of its channel."""
    theirs, mine = socket.socketpair()
    link = WorkerLink(WorkerIdentity(0, 2, state, wait_for_models=True), theirs, lambda: orphaned.append("gone"))
    app = create_app(make_settings(models_dir, reload_poll_s=0, admin_key="admin-link-3f9"), worker=link)
    reader, writer = await asyncio.open_connection(sock=mine)
    try:
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://worker.test", timeout=30) as client:
                yield client, reader, writer
    finally:
        writer.close()


def _line(message: dict[str, object]) -> bytes:
    return json.dumps(message).encode() + b"\n"


async def test_readyz_waits_for_every_worker(models_dir: Path, tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.create()
    orphaned: list[str] = []
    async with worker_app(models_dir, state, orphaned) as (client, _, _):
        assert state.ready_count() == 1  # this worker waited for its models before serving
        not_yet = await client.get("/readyz")
        assert not_yet.status_code == 503 and not_yet.json()["status"] == "loading"
        state.mark_ready(1)
        assert (await client.get("/readyz")).status_code == 200
        state.mark_gone(1)  # the other worker died: not ready until its replacement is
        assert (await client.get("/readyz")).status_code == 503
    assert orphaned == []


async def test_a_reload_is_broadcast_through_the_supervisor_and_merged(models_dir: Path, tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.create()
    orphaned: list[str] = []
    async with worker_app(models_dir, state, orphaned) as (client, reader, writer):
        reload = asyncio.create_task(client.post("/v1/admin/reload", headers=ADMIN))
        asked = json.loads(await asyncio.wait_for(reader.readline(), 10))
        assert asked["op"] == "reload"
        writer.write(_line({"op": "scan", "id": 7}))  # the supervisor asks every worker, this one included
        scanned = json.loads(await asyncio.wait_for(reader.readline(), 30))
        assert scanned["op"] == "scanned" and scanned["id"] == 7
        assert sorted(scanned["scan"]["unchanged"]) == ["digits", "ring"]
        other = {
            "worker": 1,
            "loaded": [["digits", "0123456789ab"]],
            "unchanged": ["ring"],
            "removed": [],
            "failed": [],
        }
        scans = [scanned["scan"], other]
        writer.write(_line({"op": "reloaded", "id": asked["id"], "scans": scans, "workers": 3}))
        response = await asyncio.wait_for(reload, 10)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "loaded": [{"name": "digits", "version": "0123456789ab"}],
        "unchanged": ["ring"],
        "removed": [],
        "failed": [],
        "workers": 2,
        "workers_total": 3,
    }
    assert orphaned == []


async def test_a_worker_whose_supervisor_is_gone_stops(models_dir: Path, tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.create()
    orphaned: list[str] = []
    async with worker_app(models_dir, state, orphaned) as (client, _, writer):
        writer.close()
        for _ in range(100):
            if orphaned:
                break
            await asyncio.sleep(0.02)
        assert orphaned == ["gone"]
        refused = await client.post("/v1/admin/reload", headers=ADMIN)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "shutting_down"
