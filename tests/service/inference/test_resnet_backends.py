"""A residual-network checkpoint written by the trainer is served by the eager and ONNX Runtime backends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import latents_for_seeds, load_checkpoint
from models.resnet_nets import ResNetGenerator
from service.inference.backends import with_backend
from service.inference.runner import ForwardOptions, ModelRunner, warm_up_sizes
from tests.service.inference.test_runner import SEEDS, assert_same_pixels

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def resnet_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.training.test_resnet_training import resnet_config_dict
    from training import TrainConfig, train

    config = TrainConfig.model_validate(resnet_config_dict(iterations=3))
    return train(config, tmp_path_factory.mktemp("resnet_run"), device="cpu", progress=False)


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_each_backend_serves_a_resnet_checkpoint(backend, resnet_checkpoint):
    eager = load_checkpoint(resnet_checkpoint)
    assert isinstance(eager.generator, ResNetGenerator)
    prepared = with_backend(load_checkpoint(resnet_checkpoint).generator.eval(), backend, (eager.metadata.z_dim,))
    runner = ModelRunner(load_checkpoint(resnet_checkpoint), CPU, torch.float32, ForwardOptions(backend))
    reference = ModelRunner(eager, CPU, torch.float32)
    assert runner.warm_up(warm_up_sizes(8)) > 0
    with torch.inference_mode():
        for n in (1, 7):
            z = latents_for_seeds(SEEDS[:n], eager.metadata.z_dim)  # [n, z_dim]
            assert (prepared(z) - eager.generator(z)).abs().max().item() <= 1e-4, (backend, n)
            assert_same_pixels(runner.generate(z), reference.generate(z))
