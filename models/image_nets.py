"""DCGAN-family image generator and critic."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from models.conditioning import ProjectionCritic, join_label, label_embedding
from models.configs import ImageCriticConfig, ImageGeneratorConfig
from models.latent_mapping import mapping_network


def _n_doublings(resolution: int) -> int:
    return int(math.log2(resolution // 4))


class ImageGenerator(nn.Module):
    """z [N, z_dim] (and labels [N] when conditional) -> images [N, C, H, W] in [-1, 1]."""

    def __init__(self, config: ImageGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        steps = _n_doublings(config.resolution)
        widths = [config.width * min(2 ** (steps - 1 - i), config.max_width_mult) for i in range(steps)]
        layers: list[nn.Module] = []
        # 1x1 -> 4x4 seed block.
        self.embed = label_embedding(config.n_classes, config.class_dim)
        z_in = config.z_dim + (config.class_dim if config.n_classes else 0)
        self.mapping, mapped = mapping_network(z_in, config.mapping_layers, config.mapping_width)
        layers += [nn.ConvTranspose2d(mapped, widths[0], 4, 1, 0, bias=config.norm == "none")]
        layers += self._norm_act(widths[0])
        for i in range(steps - 1):
            layers += [nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1, bias=config.norm == "none")]
            layers += self._norm_act(widths[i + 1])
        layers += [nn.ConvTranspose2d(widths[-1], config.channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def _norm_act(self, width: int) -> list[nn.Module]:
        norm: list[nn.Module] = [nn.BatchNorm2d(width)] if self.config.norm == "batch" else []
        return [*norm, nn.ReLU(inplace=True)]

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None or labels is not None:
            z = join_label(z, labels, self.embed)  # [N, z_dim + class_dim]
        z = self.mapping(z)  # [N, mapped]
        out: torch.Tensor = self.net(z[:, :, None, None])  # [N, C, H, W]
        return out


class ImageCritic(ProjectionCritic):
    """images [N, C, H, W] (and labels [N] when conditional) -> scores [N] (unbounded, higher means 'more real')."""

    def __init__(self, config: ImageCriticConfig) -> None:
        super().__init__()
        self.config = config
        steps = _n_doublings(config.resolution)
        widths = [config.width * min(2**i, config.max_width_mult) for i in range(steps)]
        layers: list[nn.Module] = [self._conv(config.channels, widths[0]), nn.LeakyReLU(0.2, inplace=True)]
        size = config.resolution // 2
        for i in range(steps - 1):
            layers += [self._conv(widths[i], widths[i + 1])]
            size //= 2
            layers += self._norm(widths[i + 1], size)
            layers += [nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers)
        head = nn.Linear(widths[-1] * 4 * 4, 1)
        self.head = spectral_norm(head) if config.norm == "spectral" else head
        self.embed = label_embedding(config.n_classes, widths[-1] * 4 * 4)  # projection onto phi(x)

    def _conv(self, c_in: int, c_out: int) -> nn.Module:
        conv = nn.Conv2d(c_in, c_out, 4, 2, 1)
        return spectral_norm(conv) if self.config.norm == "spectral" else conv

    def _norm(self, width: int, size: int) -> list[nn.Module]:
        norm = self.config.norm
        if norm == "layer":
            return [nn.GroupNorm(1, width)]  # per-sample LayerNorm over (C, H, W)
        if norm == "instance":
            return [nn.InstanceNorm2d(width, affine=True)]
        if norm == "batch":
            return [nn.BatchNorm2d(width)]
        return []

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        phi: torch.Tensor = self.features(x).flatten(1)  # [N, W * 4 * 4]
        return phi
