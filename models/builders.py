"""Turn an architecture config into a module."""

from __future__ import annotations

from torch import nn

from models.configs import (
    ImageCriticConfig,
    ImageGeneratorConfig,
    PointCriticConfig,
    PointGeneratorConfig,
)
from models.image_nets import ImageCritic, ImageGenerator
from models.point_nets import PointCritic, PointGenerator
from models.resnet_nets import ResNetCritic, ResNetGenerator


def build_generator(config: ImageGeneratorConfig | PointGeneratorConfig) -> nn.Module:
    if isinstance(config, ImageGeneratorConfig):
        return ResNetGenerator(config) if config.arch == "resnet" else ImageGenerator(config)
    return PointGenerator(config)


def build_critic(config: ImageCriticConfig | PointCriticConfig) -> nn.Module:
    if isinstance(config, ImageCriticConfig):
        return ResNetCritic(config) if config.arch == "resnet" else ImageCritic(config)
    return PointCritic(config)


def has_batch_norm(module: nn.Module) -> bool:
    """True when any submodule normalises across the batch (which breaks a per-sample gradient penalty)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
