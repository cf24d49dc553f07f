"""The 2-D toy distributions of the WGAN-GP paper: ring8, grid25 and swissroll. Fresh samples every batch."""

from __future__ import annotations

import math

import torch

from training.data.base import MixtureDataset, Sampler

RING8_RADIUS = 2.0
RING8_STD = 0.02
GRID25_STD = 0.05
SWISSROLL_NOISE = 0.25
SWISSROLL_SCALE = 7.5
DEFAULT_HELDOUT = 2500


def ring8_centres() -> torch.Tensor:
    """8 centres evenly spaced on a circle of radius 2, endpoint excluded: angles 2 pi k / 8, k = 0..7."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return (RING8_RADIUS * torch.stack([angles.cos(), angles.sin()], dim=1)).float()  # [8, 2]


def grid25_centres() -> torch.Tensor:
    """Centres {-4, -2, 0, 2, 4}^2."""
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)  # [25, 2]


def _mixture_sampler(centres: torch.Tensor, std: float) -> Sampler:
    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(centres.shape[0], (n,), generator=generator)
        return centres[idx] + std * torch.randn(n, centres.shape[1], generator=generator)  # [n, 2]

    return sample


def _swissroll_sample(n: int, generator: torch.Generator) -> torch.Tensor:
    """scikit-learn's make_swiss_roll in the (x, z) plane, noise 0.25, divided by 7.5 (as in the paper's code)."""
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator))
    points = torch.stack([t * t.cos(), t * t.sin()], dim=1)
    points = points + SWISSROLL_NOISE * torch.randn(n, 2, generator=generator)
    return points / SWISSROLL_SCALE  # [n, 2]


def _heldout(sampler: Sampler, n: int, seed: int) -> torch.Tensor:
    return sampler(n, torch.Generator("cpu").manual_seed(seed))


def load_toy(name: str, heldout: int | None, heldout_seed: int) -> MixtureDataset:
    n_held = heldout or DEFAULT_HELDOUT
    if name == "ring8":
        centres, std = ring8_centres(), RING8_STD
    elif name == "grid25":
        centres, std = grid25_centres(), GRID25_STD
    elif name == "swissroll":
        return MixtureDataset(
            name=name,
            kind="points",
            heldout=_heldout(_swissroll_sample, n_held, heldout_seed),
            sampler=_swissroll_sample,
            info={"train": "infinite"},
        )
    else:
        raise ValueError(f"unknown toy dataset {name!r}")
    sampler = _mixture_sampler(centres, std)
    return MixtureDataset(
        name=name,
        kind="points",
        heldout=_heldout(sampler, n_held, heldout_seed),
        sampler=sampler,
        centres=centres,
        std=std,
        info={"train": "infinite", "modes": int(centres.shape[0]), "std": std},
    )
