"""Quality figures: mode coverage / high-quality share for Gaussian mixtures, critic statistics for images."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from models import CriticReference
from training.data.toy import GRID25_STD, RING8_STD, grid25_centres, ring8_centres

HIGH_QUALITY_SIGMAS = 3.0
DEFAULT_POINT_SAMPLES = 2500


def mixture_for(dataset: str) -> tuple[torch.Tensor, float] | None:
    """(centres, std) of a known Gaussian-mixture dataset, or None (swissroll, npz, images)."""
    if dataset == "ring8":
        return ring8_centres(), RING8_STD
    if dataset == "grid25":
        return grid25_centres(), GRID25_STD
    return None


def mode_coverage(
    samples: torch.Tensor, centres: torch.Tensor, std: float, sigmas: float = HIGH_QUALITY_SIGMAS
) -> dict[str, Any]:
    """High quality = within `sigmas` * std of the nearest centre; a mode is covered by >= 1 such sample."""
    x = samples.detach().double().cpu()  # [N, D]
    c = centres.double().cpu()  # [K, D]
    dist = torch.cdist(x, c)  # [N, K]
    nearest_dist, nearest = dist.min(dim=1)  # [N], [N]
    finite = torch.isfinite(x).all(dim=1)
    good = finite & (nearest_dist <= sigmas * std)
    counts = torch.bincount(nearest[good], minlength=c.shape[0])  # [K]
    n = int(x.shape[0])
    return {
        "samples": n,
        "modes_total": int(c.shape[0]),
        "modes_covered": int((counts > 0).sum()),
        "high_quality_share": float(good.sum()) / n if n else 0.0,
        "high_quality_sigmas": sigmas,
        "samples_per_mode": [int(v) for v in counts],
    }


@torch.no_grad()
def generate(generator: nn.Module, n: int, z_dim: int, seed: int, device: torch.device | str = "cpu",
             batch_size: int = 500) -> torch.Tensor:
    """n samples from fresh N(0, I) latents drawn from `seed` on the CPU; returned on the CPU."""
    gen = torch.Generator("cpu").manual_seed(seed)
    z = torch.randn(n, z_dim, generator=gen)
    out = [generator(chunk.to(device)).float().cpu() for chunk in z.split(batch_size)]
    return torch.cat(out)


@torch.no_grad()
def critic_scores(critic: nn.Module, data: torch.Tensor, device: torch.device | str = "cpu",
                  batch_size: int = 500) -> torch.Tensor:
    """Critic scores [N] on the CPU, in batches."""
    return torch.cat([critic(chunk.to(device)).float().cpu() for chunk in data.split(batch_size)])


def critic_figures(reference: CriticReference, fake_scores: torch.Tensor) -> dict[str, Any]:
    """How generated samples sit within the real-data reference: their mean score and mean/median percentile."""
    scores = fake_scores.double().cpu().numpy()
    pct = reference.percentile(scores)
    return {
        "samples": int(scores.size),
        "critic_mean_fake": float(scores.mean()),
        "critic_mean_real_reference": reference.real.mean,
        "wasserstein_estimate": reference.real.mean - float(scores.mean()),
        "fake_mean_percentile": float(np.mean(pct)),
        "fake_median_percentile": float(np.median(pct)),
    }
