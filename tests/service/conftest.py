"""Fixtures of the service tests: models folders holding the trainer's tiny checkpoints, and a running app."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.service.app_client import make_settings, serve_in_process


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def models_dir(tmp_path: Path, tiny_image_checkpoint: Path, tiny_points_checkpoint: Path) -> Path:
    """`digits` (1-channel images) and `ring` (2-D points), copied from the trainer's real checkpoints."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_image_checkpoint, folder / "digits.safetensors")
    shutil.copy(tiny_points_checkpoint, folder / "ring.safetensors")
    return folder


@pytest.fixture
async def client(models_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app with both models, serving in-process (default model: digits, the first name)."""
    async with serve_in_process(make_settings(models_dir)) as c:
        yield c
