"""Shared fixtures: real checkpoints written by the real trainer (tiny runs, a few seconds each).

`tiny_points_checkpoint`, `tiny_image_checkpoint` and `tiny_conditional_checkpoint` are session-scoped paths to
`.safetensors` files; tests that need a models directory copy them there. Their names and return types are a
contract with tests/service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def tiny_points_config_dict() -> dict[str, Any]:
    """ring8, a small MLP, 20 generator iterations."""
    return {
        "name": "tiny-ring8",
        "seed": 0,
        "data": {"dataset": "ring8", "heldout": 500},
        "model": {"generator": {"hidden": 32, "depth": 2}, "critic": {"hidden": 32, "depth": 2}},
        "train": {"iterations": 20, "batch_size": 64, "sample_every": 0, "threads": 1},
        "eval": {"reference_samples": 256, "point_samples": 500},
    }


def tiny_image_config_dict() -> dict[str, Any]:
    """scikit-learn's digits at 16x16, 1 channel, small widths, z_dim 16, 15 generator iterations, batch 16."""
    return {
        "name": "tiny-digits",
        "seed": 0,
        "data": {"dataset": "digits", "resolution": 16, "channels": 1},
        "model": {"generator": {"z_dim": 16, "width": 16}, "critic": {"width": 16, "norm": "layer"}},
        "train": {"iterations": 15, "batch_size": 16, "sample_every": 0, "threads": 1},
        "eval": {"reference_samples": 128, "grid_size": 4},
    }


@pytest.fixture(scope="session")
def tiny_points_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ring8 checkpoint (`tiny-ring8.safetensors`) with a complete critic_reference."""
    from training import TrainConfig, train

    config = TrainConfig.model_validate(tiny_points_config_dict())
    return train(config, tmp_path_factory.mktemp("tiny_points_run"), device="cpu", progress=False)


@pytest.fixture(scope="session")
def tiny_image_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 1x16x16 image checkpoint (`tiny-digits.safetensors`, z_dim 16) with a complete critic_reference."""
    from training import TrainConfig, train

    config = TrainConfig.model_validate(tiny_image_config_dict())
    return train(config, tmp_path_factory.mktemp("tiny_image_run"), device="cpu", progress=False)


@pytest.fixture(scope="session")
def tiny_image_checkpoint_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another real 1x16x16 checkpoint (`tiny-digits-v2.safetensors`, same architecture, trained from seed 1):
    a new version of the same model for hot-reload tests."""
    from training import TrainConfig, train

    config = TrainConfig.model_validate({**tiny_image_config_dict(), "name": "tiny-digits-v2", "seed": 1})
    return train(config, tmp_path_factory.mktemp("tiny_image_run_v2"), device="cpu", progress=False)


def tiny_conditional_config_dict() -> dict[str, Any]:
    """The tiny digits config made class-conditional (10 classes, "0".."9"), 5 generator iterations."""
    values = tiny_image_config_dict()
    return {
        **values,
        "name": "tiny-cond",
        "model": {**values["model"], "conditional": True},
        "train": {**values["train"], "iterations": 5},
    }


@pytest.fixture(scope="session")
def tiny_conditional_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real class-conditional 1x16x16 checkpoint (`tiny-cond.safetensors`, z_dim 16, classes "0".."9") with its
    overall and per-class critic references."""
    from training import TrainConfig, train

    config = TrainConfig.model_validate(tiny_conditional_config_dict())
    return train(config, tmp_path_factory.mktemp("tiny_cond_run"), device="cpu", progress=False)
