"""Fixtures of the reliability tests: a models folder with the trainer's tiny checkpoints."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def models_dir(
    tmp_path_factory: pytest.TempPathFactory, tiny_image_checkpoint: Path, tiny_points_checkpoint: Path
) -> Path:
    """`digits` (1x16x16 images) and `ring` (2-D points), copied from the trainer's real checkpoints."""
    folder = tmp_path_factory.mktemp("reliability_models")
    shutil.copy(tiny_image_checkpoint, folder / "digits.safetensors")
    shutil.copy(tiny_points_checkpoint, folder / "ring.safetensors")
    return folder
