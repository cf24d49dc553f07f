"""MLP generator and critic for low-dimensional point data (the toy 2-D mixtures)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from models.configs import PointCriticConfig, PointGeneratorConfig


class PointGenerator(nn.Module):
    """z [N, z_dim] -> points [N, out_dim]."""

    def __init__(self, config: PointGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width_in = config.z_dim
        for _ in range(config.depth):
            layers += [nn.Linear(width_in, config.hidden), nn.ReLU(inplace=True)]
            width_in = config.hidden
        layers += [nn.Linear(width_in, config.out_dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(z)  # [N, out_dim]
        return out


class PointCritic(nn.Module):
    """points [N, in_dim] -> scores [N]."""

    def __init__(self, config: PointCriticConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width_in = config.in_dim
        for _ in range(config.depth):
            layers += [self._linear(width_in, config.hidden)]
            if config.norm == "layer":
                layers += [nn.LayerNorm(config.hidden)]
            elif config.norm == "batch":
                layers += [nn.BatchNorm1d(config.hidden)]
            layers += [nn.ReLU(inplace=True)]
            width_in = config.hidden
        layers += [self._linear(width_in, 1)]
        self.net = nn.Sequential(*layers)

    def _linear(self, n_in: int, n_out: int) -> nn.Module:
        linear = nn.Linear(n_in, n_out)
        return spectral_norm(linear) if self.config.norm == "spectral" else linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = self.net(x)  # [N, 1]
        return scores.squeeze(1)  # [N]
