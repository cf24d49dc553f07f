"""Fixtures of the deployment tests: live wgan-serve replicas on loopback (see processes.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.deploy.processes import Replica, launch_replica


@pytest.fixture
def models_dir(tmp_path: Path, tiny_image_checkpoint: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_image_checkpoint, folder / "digits.safetensors")
    return folder


@pytest.fixture
def start_replica(tmp_path: Path, models_dir: Path) -> Iterator[Callable[[], Replica]]:
    """Starts `wgan-serve` processes on free loopback ports; all are stopped at the end of the test."""
    replicas: list[Replica] = []

    def start() -> Replica:
        replica = launch_replica(models_dir, tmp_path)
        replicas.append(replica)
        return replica

    yield start
    for replica in replicas:
        replica.stop()
