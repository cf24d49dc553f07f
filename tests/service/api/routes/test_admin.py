"""POST /v1/admin/reload: only with the admin key; swaps in changed files, refuses bad ones, drops removed ones,
and a request already queued on the old version still gets its answer."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

import httpx
import pytest

from tests.service.app_client import make_settings, serve_in_process

pytestmark = pytest.mark.anyio

ADMIN_KEY = "admin-key-7f3a"
API_KEY = "api-key-19c2"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
API = {"Authorization": f"Bearer {API_KEY}"}


def version_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@pytest.fixture
def folder(tmp_path: Path, tiny_image_checkpoint: Path, tiny_points_checkpoint: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny_image_checkpoint, models / "digits.safetensors")
    shutil.copy(tiny_points_checkpoint, models / "ring.safetensors")
    return models


async def test_the_admin_api_is_off_without_an_admin_key(folder: Path) -> None:
    async with serve_in_process(make_settings(folder, reload_poll_s=0)) as client:
        response = await client.post("/v1/admin/reload", headers={"Authorization": "Bearer anything"})
        assert response.status_code == 403 and response.json()["error"]["code"] == "admin_disabled"


async def test_only_the_admin_key_opens_the_admin_api(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(folder, reload_poll_s=0, admin_key=ADMIN_KEY, api_keys=API_KEY)
    with caplog.at_level("DEBUG"):
        async with serve_in_process(settings) as client:
            for headers in ({}, API, {"Authorization": "Bearer admin-key-7f3"}, {"Authorization": ADMIN_KEY}):
                response = await client.post("/v1/admin/reload", headers=headers)
                assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
            assert (await client.get("/v1/models", headers=ADMIN)).status_code == 401  # not an API key either
            ok = await client.post("/v1/admin/reload", headers=ADMIN)
            assert ok.status_code == 200
            assert ok.json() == {
                "loaded": [],
                "unchanged": ["digits", "ring"],
                "removed": [],
                "failed": [],
                "workers": 1,
                "workers_total": 1,
            }
    assert ADMIN_KEY not in caplog.text and API_KEY not in caplog.text


async def test_reload_swaps_refuses_and_removes(
    folder: Path, tiny_image_checkpoint: Path, tiny_image_checkpoint_v2: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = version_of(tiny_image_checkpoint), version_of(tiny_image_checkpoint_v2)
    settings = make_settings(folder, reload_poll_s=0, admin_key=ADMIN_KEY)
    async with serve_in_process(settings) as client:

        async def digits_version() -> str:
            return (await client.get("/v1/models/digits")).json()["version"]

        (folder / "digits.safetensors").write_bytes(b"\x80\x04 not a checkpoint")
        with caplog.at_level("ERROR", logger="service.catalog.folder_sync"):
            refused = (await client.post("/v1/admin/reload", headers=ADMIN)).json()
        assert [f["name"] for f in refused["failed"]] == ["digits"] and refused["loaded"] == []
        assert f"still serving version {old}" in caplog.text
        assert await digits_version() == old
        assert (await client.post("/v1/sample", json={"seed": 1})).status_code == 200

        shutil.copy(tiny_image_checkpoint_v2, folder / "digits.safetensors")
        (folder / "ring.safetensors").unlink()
        swapped = (await client.post("/v1/admin/reload", headers=ADMIN)).json()
        assert swapped["loaded"] == [{"name": "digits", "version": new}] and swapped["removed"] == ["ring"]
        assert await digits_version() == new
        assert (await client.get("/v1/models/ring")).status_code == 404
        sample = (await client.post("/v1/sample", json={"seed": 1})).json()
        assert sample["version"] == new
        metrics = (await client.get("/metrics")).text
        assert f'version="{new}"' in metrics and f'version="{old}"' not in metrics


async def test_a_request_queued_on_the_old_version_is_answered_by_it(
    folder: Path, tiny_image_checkpoint: Path, tiny_image_checkpoint_v2: Path
) -> None:
    # A long batching window keeps the request in the old engine's queue while the new version is swapped in.
    settings = make_settings(folder, reload_poll_s=0, admin_key=ADMIN_KEY, max_batch_size=64, max_wait_ms=1500.0)
    async with serve_in_process(settings) as client:
        queued = asyncio.create_task(client.post("/v1/sample", json={"seed": 5, "n": 2}))
        await asyncio.sleep(0.2)
        shutil.copy(tiny_image_checkpoint_v2, folder / "digits.safetensors")
        reload = await client.post("/v1/admin/reload", headers=ADMIN)
        assert reload.json()["loaded"][0]["version"] == version_of(tiny_image_checkpoint_v2)
        assert not queued.done(), "the batching window should still hold the request"
        answer: httpx.Response = await queued
        assert answer.status_code == 200 and answer.json()["version"] == version_of(tiny_image_checkpoint)


async def test_a_class_conditional_checkpoint_added_later_is_served_with_its_labels(
    folder: Path, tiny_conditional_checkpoint: Path
) -> None:
    # Eager and without a warm-up, the first forward pass of the new model is a request's, labels and all.
    settings = make_settings(folder, reload_poll_s=0, admin_key=ADMIN_KEY, warmup=False, backend="eager")
    async with serve_in_process(settings) as client:
        listed = (await client.get("/v1/models")).json()
        assert sorted(m["name"] for m in listed["models"]) == ["digits", "ring"]
        shutil.copy(tiny_conditional_checkpoint, folder / "cond.safetensors")
        report = (await client.post("/v1/admin/reload", headers=ADMIN)).json()
        assert [m["name"] for m in report["loaded"]] == ["cond"] and report["failed"] == []
        answer = await client.post("/v1/sample", json={"model": "cond", "seed": 1, "label": 3})
        assert answer.status_code == 200 and answer.json()["images"][0]["label"] == "3"
        assert (await client.post("/v1/sample", json={"model": "digits", "seed": 1})).status_code == 200
