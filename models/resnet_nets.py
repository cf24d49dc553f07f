"""The WGAN-GP paper's residual image generator and critic (Gulrajani et al. 2017, appendix and CIFAR-10 code).

Generator: Linear(z -> w0 * 4 * 4), then one up-block per doubling up to `resolution`, batch norm, ReLU, a 3x3
convolution to the image channels and tanh. Up-block: x + F(x) with F = BN, ReLU, nearest-neighbour 2x upsampling,
3x3 conv, BN, ReLU, 3x3 conv, and a shortcut of 2x upsampling and a 1x1 conv.

Critic: a first down-block (3x3 conv, ReLU, 3x3 conv, 2x2 mean pool; shortcut mean pool then 1x1 conv), more
down-blocks (ReLU, 3x3 conv, ReLU, 3x3 conv, mean pool; shortcut 1x1 conv then mean pool) until 8x8, two blocks
without resampling (identity shortcut), ReLU, a global mean pool and a linear score. No normalisation, so the
gradient penalty stays per sample. At resolution 32 with `width: 128, max_width_mult: 1` these are the paper's
CIFAR-10 networks: three up-blocks in the generator, four blocks in the critic, 128 channels throughout.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from models.conditioning import ProjectionCritic, join_label, label_embedding
from models.configs import ImageCriticConfig, ImageGeneratorConfig
from models.latent_mapping import mapping_network

CRITIC_PLAIN_BLOCKS = 2  # blocks without resampling at the critic's last resolution (the paper's CIFAR-10 critic)
CRITIC_LAST_RESOLUTION = 8


def _widths(width: int, max_mult: int, steps: int, growing: bool) -> list[int]:
    """Per-stage channels: the generator halves them towards the output, the critic doubles them going in."""
    mults = [min(2**i, max_mult) for i in range(steps)]
    return [width * m for m in (mults if growing else reversed(mults))]


class UpBlock(nn.Module):
    """x [N, c_in, H, W] -> [N, c_out, 2H, 2W]: BN-ReLU-up-conv-BN-ReLU-conv plus an upsampled 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, batch_norm: bool) -> None:
        super().__init__()
        self.norm1: nn.Module = nn.BatchNorm2d(c_in) if batch_norm else nn.Identity()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2: nn.Module = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))
        skip: torch.Tensor = self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        out: torch.Tensor = skip + h
        return out


class ResNetGenerator(nn.Module):
    """z [N, z_dim] (and labels [N] when conditional) -> images [N, C, R, R] in [-1, 1]."""

    def __init__(self, config: ImageGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        steps = int(math.log2(config.resolution // 4))
        widths = _widths(config.width, config.max_width_mult, steps, growing=False)
        batch_norm = config.norm == "batch"
        self.embed = label_embedding(config.n_classes, config.class_dim)
        z_in = config.z_dim + (config.class_dim if config.n_classes else 0)
        self.mapping, mapped = mapping_network(z_in, config.mapping_layers, config.mapping_width)
        self.seed_width = widths[0]
        self.linear = nn.Linear(mapped, widths[0] * 4 * 4)
        self.blocks = nn.Sequential(*(UpBlock(widths[max(i - 1, 0)], widths[i], batch_norm) for i in range(steps)))
        self.out_norm: nn.Module = nn.BatchNorm2d(widths[-1]) if batch_norm else nn.Identity()
        self.out_conv = nn.Conv2d(widths[-1], config.channels, 3, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None or labels is not None:
            z = join_label(z, labels, self.embed)  # [N, z_dim + class_dim]
        h = self.linear(self.mapping(z)).view(z.shape[0], self.seed_width, 4, 4)  # [N, w0, 4, 4]
        h = F.relu(self.out_norm(self.blocks(h)))  # [N, w_last, R, R]
        return torch.tanh(self.out_conv(h))  # [N, C, R, R]


class DownBlock(nn.Module):
    """x [N, c_in, H, W] -> [N, c_out, H/2, W/2] (or H, W with `down=False`), no normalisation.

    `first`: the critic's first block, which sees pixels: conv-ReLU-conv-pool, shortcut pool then 1x1 conv.
    Otherwise ReLU-conv-ReLU-conv(-pool), shortcut 1x1 conv then pool (identity when nothing changes).
    """

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool, spectral: bool) -> None:
        super().__init__()
        wrap = spectral_norm if spectral else (lambda m: m)
        self.down, self.first = down, first
        self.conv1 = wrap(nn.Conv2d(c_in, c_out, 3, padding=1))
        self.conv2 = wrap(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.shortcut: nn.Module | None = wrap(nn.Conv2d(c_in, c_out, 1)) if (down or c_in != c_out) else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.first:
            h = self.conv2(F.relu(self.conv1(x)))
            skip = self.shortcut(self._pool(x)) if self.shortcut is not None else x
        else:
            h = self.conv2(F.relu(self.conv1(F.relu(x))))
            skip = self._pool(self.shortcut(x)) if self.shortcut is not None else x
        return skip + self._pool(h)


class ResNetCritic(ProjectionCritic):
    """images [N, C, R, R] (and labels [N] when conditional) -> scores [N]."""

    def __init__(self, config: ImageCriticConfig) -> None:
        super().__init__()
        self.config = config
        spectral = config.norm == "spectral"
        n_down = max(1, int(math.log2(config.resolution // CRITIC_LAST_RESOLUTION)))
        widths = _widths(config.width, config.max_width_mult, n_down, growing=True)
        blocks: list[nn.Module] = [DownBlock(config.channels, widths[0], True, True, spectral)]
        blocks += [DownBlock(widths[i - 1], widths[i], True, False, spectral) for i in range(1, n_down)]
        blocks += [DownBlock(widths[-1], widths[-1], False, False, spectral) for _ in range(CRITIC_PLAIN_BLOCKS)]
        self.blocks = nn.Sequential(*blocks)
        head = nn.Linear(widths[-1], 1)
        self.head = spectral_norm(head) if spectral else head
        self.embed = label_embedding(config.n_classes, widths[-1])  # projection onto phi(x)

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        phi: torch.Tensor = F.relu(self.blocks(x)).mean(dim=(2, 3))  # [N, w_last]
        return phi
