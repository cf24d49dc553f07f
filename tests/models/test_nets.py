from typing import Literal

import pytest
import torch

from models import (
    ImageCriticConfig,
    ImageGeneratorConfig,
    PointCriticConfig,
    PointGeneratorConfig,
    build_critic,
    build_generator,
    has_batch_norm,
)


@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_image_shapes_and_range(resolution: int, channels: Literal[1, 3]) -> None:
    gen = build_generator(ImageGeneratorConfig(z_dim=16, channels=channels, resolution=resolution, width=8)).eval()
    critic = build_critic(ImageCriticConfig(channels=channels, resolution=resolution, width=8))
    images = gen(torch.randn(3, 16))
    assert images.shape == (3, channels, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    assert critic(images).shape == (3,)


@pytest.mark.parametrize("norm", ["none", "layer", "instance", "spectral"])
def test_critic_norms_are_per_sample(norm: Literal["none", "layer", "instance", "spectral"]) -> None:
    critic = build_critic(ImageCriticConfig(resolution=16, width=8, norm=norm)).eval()
    assert not has_batch_norm(critic)
    x = torch.randn(4, 1, 16, 16)
    # a sample's score does not depend on its batch mates
    assert torch.allclose(critic(x)[:1], critic(x[:1]), atol=1e-5)


def test_batch_norm_critic_is_detected() -> None:
    assert has_batch_norm(build_critic(ImageCriticConfig(resolution=16, width=8, norm="batch")))
    assert has_batch_norm(build_critic(PointCriticConfig(hidden=8, norm="batch")))


def test_unsupported_resolution_refused() -> None:
    with pytest.raises(ValueError, match="resolution must be one of"):
        ImageGeneratorConfig(resolution=48)


def test_unknown_config_key_refused() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        ImageCriticConfig.model_validate({"resolution": 32, "dropout": 0.5})


def test_point_nets() -> None:
    gen = build_generator(PointGeneratorConfig(z_dim=2, hidden=16, depth=2))
    critic = build_critic(PointCriticConfig(hidden=16, depth=2, norm="spectral"))
    pts = gen(torch.randn(10, 2))
    assert pts.shape == (10, 2)
    assert critic(pts).shape == (10,)
