"""Liveness, readiness and loading: bad files are skipped, the default model is honoured, no models means not ready."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.catalog.registry import ModelRegistry, Readiness
from service.errors import NotReadyError
from tests.service.app_client import make_settings, serve_in_process

pytestmark = pytest.mark.anyio


async def test_bad_checkpoints_are_skipped_and_the_rest_serve(
    tmp_path: Path, tiny_image_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_image_checkpoint, folder / "good.safetensors")
    (folder / "garbage.safetensors").write_bytes(b"definitely not a checkpoint")
    (folder / "truncated.safetensors").write_bytes(tiny_image_checkpoint.read_bytes()[:5000])
    (folder / "notes.txt").write_text("ignored")
    with caplog.at_level("ERROR", logger="service.catalog.folder_sync"):
        async with serve_in_process(make_settings(folder)) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json() == {"status": "ready", "models": ["good"]}
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.post("/v1/sample", json={"seed": 1})).status_code == 200
    skipped = {r.getMessage().split(":")[0] for r in caplog.records}
    assert skipped == {"skipping garbage.safetensors", "skipping truncated.safetensors"}


async def test_no_models_is_not_ready_and_requests_get_404(tmp_path: Path) -> None:
    async with serve_in_process(make_settings(tmp_path)) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "no_models"
        assert "retry-after" in ready.headers
        assert (await client.get("/healthz")).status_code == 200
        response = await client.post("/v1/sample", json={})
        assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"


async def test_the_configured_default_model_is_used(models_dir: Path) -> None:
    async with serve_in_process(make_settings(models_dir, default_model="ring")) as client:
        assert (await client.get("/v1/models")).json()["default"] == "ring"
        assert "points" in (await client.post("/v1/sample", json={"seed": 1})).json()


def _state(registry: ModelRegistry) -> Readiness:
    """The registry's state, read through a call: a type checker would otherwise keep the first state it saw
    asserted, across the calls that change it."""
    return registry.state


def test_the_registry_refuses_requests_while_loading_and_draining() -> None:
    registry = ModelRegistry(None)
    assert _state(registry) is Readiness.LOADING
    with pytest.raises(NotReadyError, match="loading"):
        registry.get(None)
    registry.publish([])
    assert _state(registry) is Readiness.NO_MODELS
    registry.start_draining()
    with pytest.raises(NotReadyError, match="shutting down"):
        registry.get("anything")
    registry.publish([])  # a loader finishing late does not undo draining
    assert _state(registry) is Readiness.DRAINING
