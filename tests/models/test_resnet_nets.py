"""The WGAN-GP paper's residual networks: structure, shapes and per-sample critics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import ImageCriticConfig, ImageGeneratorConfig, build_critic, build_generator, has_batch_norm
from models.resnet_nets import DownBlock, ResNetCritic, ResNetGenerator, UpBlock

CIFAR_G = ImageGeneratorConfig(arch="resnet", z_dim=128, channels=3, resolution=32, width=128, max_width_mult=1)
CIFAR_C = ImageCriticConfig(arch="resnet", channels=3, resolution=32, width=128, max_width_mult=1)


def test_the_cifar10_networks_have_the_papers_structure():
    gen, critic = build_generator(CIFAR_G), build_critic(CIFAR_C)
    assert isinstance(gen, ResNetGenerator) and isinstance(critic, ResNetCritic)
    ups = [m for m in gen.modules() if isinstance(m, UpBlock)]
    downs = [m for m in critic.modules() if isinstance(m, DownBlock)]
    assert len(ups) == 3 and all(b.conv1.out_channels == 128 for b in ups)
    assert len(downs) == 4 and [b.down for b in downs] == [True, True, False, False]
    assert all(b.conv1.out_channels == 128 for b in downs)
    assert not has_batch_norm(critic) and not any(isinstance(m, (nn.GroupNorm, nn.LayerNorm)) for m in critic.modules())
    assert has_batch_norm(gen)
    z = torch.randn(2, 128)
    with torch.no_grad():
        images = gen.eval()(z)
        assert images.shape == (2, 3, 32, 32) and images.abs().max() <= 1
        assert critic(images).shape == (2,)


def test_the_64px_variant_widens_towards_the_latent():
    gen = build_generator(ImageGeneratorConfig(arch="resnet", z_dim=16, channels=3, resolution=64, width=8))
    critic = build_critic(ImageCriticConfig(arch="resnet", channels=3, resolution=64, width=8))
    assert [b.conv1.out_channels for b in gen.modules() if isinstance(b, UpBlock)] == [64, 32, 16, 8]
    assert [b.conv1.out_channels for b in critic.modules() if isinstance(b, DownBlock)] == [8, 16, 32, 32, 32]
    with torch.no_grad():
        assert critic(gen.eval()(torch.randn(2, 16))).shape == (2,)


def test_the_generator_upsamples_by_nearest_neighbour():
    block = UpBlock(2, 2, batch_norm=False)
    with torch.no_grad():
        for param in block.parameters():
            param.zero_()
        block.shortcut.weight.copy_(torch.eye(2)[:, :, None, None])
        x = torch.randn(1, 2, 3, 3)
        torch.testing.assert_close(block(x), x.repeat_interleave(2, 2).repeat_interleave(2, 3))


def test_the_critic_scores_each_sample_on_its_own():
    critic = build_critic(ImageCriticConfig(arch="resnet", resolution=16, width=8)).eval()
    x = torch.randn(6, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(critic(x)[2:3], critic(x[2:3]))


def test_the_resnet_critic_refuses_per_sample_and_batch_normalisation():
    assert ImageCriticConfig(arch="resnet").norm == "none"
    assert ImageCriticConfig(arch="resnet", norm="spectral").norm == "spectral"
    for norm in ("layer", "batch", "instance"):
        with pytest.raises(ValueError, match="resnet critic"):
            ImageCriticConfig(arch="resnet", norm=norm)
