"""Checkpoints of the other generator architectures, written by the trainer, are served by the eager and ONNX
Runtime backends: the residual networks, and a DCGAN generator with a mapping network."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import latents_for_seeds, load_checkpoint
from models.image_nets import ImageGenerator
from models.resnet_nets import ResNetGenerator
from service.inference.backends import with_backend
from service.inference.runner import ForwardOptions, ModelRunner, warm_up_sizes
from tests.service.inference.test_runner import SEEDS, assert_same_pixels

CPU = torch.device("cpu")
GENERATORS = {"resnet": ResNetGenerator, "mapping": ImageGenerator}


@pytest.fixture(scope="module", params=sorted(GENERATORS))
def architecture_checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.training.test_resnet_training import resnet_config_dict
    from training import TrainConfig, train

    raw = resnet_config_dict(iterations=3)
    if request.param == "mapping":
        raw["model"] = {
            "generator": {"z_dim": 16, "width": 16, "mapping_layers": 2, "mapping_width": 32},
            "critic": {"width": 16},
        }
    config = TrainConfig.model_validate(raw)
    return train(config, tmp_path_factory.mktemp(f"{request.param}_run"), device="cpu", progress=False)


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_each_backend_serves_the_checkpoint(backend, architecture_checkpoint):
    eager = load_checkpoint(architecture_checkpoint)
    assert type(eager.generator) in GENERATORS.values()
    prepared = with_backend(load_checkpoint(architecture_checkpoint).generator.eval(), backend, (eager.metadata.z_dim,))
    runner = ModelRunner(load_checkpoint(architecture_checkpoint), CPU, torch.float32, ForwardOptions(backend))
    reference = ModelRunner(eager, CPU, torch.float32)
    assert runner.warm_up(warm_up_sizes(8)) > 0
    with torch.inference_mode():
        for n in (1, 7):
            z = latents_for_seeds(SEEDS[:n], eager.metadata.z_dim)  # [n, z_dim]
            assert (prepared(z) - eager.generator(z)).abs().max().item() <= 1e-4, (backend, n)
            assert_same_pixels(runner.generate(z), reference.generate(z))
