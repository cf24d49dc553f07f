"""API keys: /v1/* needs a valid bearer key when keys are set; health, readiness and metrics stay open."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.api.auth import key_matches
from tests.service.app_client import make_settings, serve_in_process

pytestmark = pytest.mark.anyio


async def test_keys_guard_the_v1_routes(models_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(models_dir, api_keys="first-key-123,second-key-456")
    with caplog.at_level("DEBUG"):
        async with serve_in_process(settings) as client:
            for path in ("/healthz", "/readyz", "/metrics"):
                assert (await client.get(path)).status_code == 200
            missing = await client.post("/v1/sample", json={"seed": 1})
            assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
            assert missing.headers["www-authenticate"] == "Bearer"
            for header in ("Bearer wrong-key", "Basic Zmlyc3Qta2V5LTEyMw==", "Bearer first-key-12", "first-key-123"):
                response = await client.get("/v1/models", headers={"Authorization": header})
                assert response.status_code == 401, header
            for key in ("first-key-123", "second-key-456"):
                ok = await client.post("/v1/sample", json={"seed": 1}, headers={"Authorization": f"Bearer {key}"})
                assert ok.status_code == 200
    assert "first-key-123" not in caplog.text and "second-key-456" not in caplog.text
    assert "first-key-123" not in repr(settings)


def test_key_matching_is_exact() -> None:
    keys = [b"alpha-key", b"beta-key"]
    assert key_matches("beta-key", keys)
    assert not key_matches("beta-ke", keys) and not key_matches("beta-key ", keys) and not key_matches("", keys)
