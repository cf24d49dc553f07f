"""Latent maths: seeded per-item sampling, truncation, slerp and lerp.

The latent of seed s is `torch.randn(z_dim, generator=torch.Generator("cpu").manual_seed(s))`, drawn on the CPU,
so a sample depends only on (model, seed, truncation), never on its batch or on the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

SEED_MIN = 0
SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed accepts any int64; we keep seeds non-negative.
_MAX_TRUNCATION_REDRAWS = 10_000
# Below this |sin(omega)| the great circle is ill-defined (parallel or antiparallel latents): use lerp.
_SLERP_EPS = 1e-6


def latent_for_seed(seed: int, z_dim: int, truncation: float | None = None) -> torch.Tensor:
    """One latent [z_dim] float32 on the CPU; components with |z_i| > truncation are redrawn from the same stream."""
    if not SEED_MIN <= seed <= SEED_MAX:
        raise ValueError(f"seed must be in [{SEED_MIN}, {SEED_MAX}], got {seed}")
    if truncation is not None and not truncation > 0:
        raise ValueError(f"truncation must be > 0, got {truncation}")
    gen = torch.Generator("cpu").manual_seed(seed)
    z = torch.randn(z_dim, generator=gen)  # [z_dim]
    if truncation is None:
        return z
    for _ in range(_MAX_TRUNCATION_REDRAWS):
        outside = z.abs() > truncation  # [z_dim] bool
        n_out = int(outside.sum())
        if n_out == 0:
            return z
        z[outside] = torch.randn(n_out, generator=gen)
    raise ValueError(f"truncation {truncation} is too small: components keep landing outside it")


def latents_for_seeds(seeds: Sequence[int], z_dim: int, truncation: float | None = None) -> torch.Tensor:
    """Latents [N, z_dim] float32 on the CPU, row i from seeds[i] alone."""
    if z_dim < 1:
        raise ValueError(f"z_dim must be >= 1, got {z_dim}")
    out = torch.empty(len(seeds), z_dim)  # [N, z_dim]
    for i, seed in enumerate(seeds):
        out[i] = latent_for_seed(int(seed), z_dim, truncation)
    return out


def _as_t(t: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=torch.float64, device=like.device)
    return t.unsqueeze(-1)  # [..., 1], broadcasts against [..., z_dim]


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """(1 - t) z0 + t z1, over the last dimension; t is a float or a tensor broadcastable to z's leading dims."""
    a, b = z0.double(), z1.double()
    tt = _as_t(t, a)
    return ((1 - tt) * a + tt * b).to(z0.dtype)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Great-circle interpolation over the last dimension, falling back to lerp where sin(omega) is tiny.

    slerp(z0, z1, t) = sin((1-t) omega) / sin omega * z0 + sin(t omega) / sin omega * z1,
    omega = arccos(<z0, z1> / (|z0| |z1|)). t = 0 and t = 1 give z0 and z1 exactly.
    """
    a, b = z0.double(), z1.double()
    tt = _as_t(t, a)
    norms = a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)  # [..., 1]
    cos = ((a * b).sum(dim=-1, keepdim=True) / norms.clamp_min(1e-300)).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)  # [..., 1]
    sin_omega = torch.sin(omega)
    degenerate = (sin_omega.abs() < _SLERP_EPS) | (norms == 0)
    safe_sin = torch.where(degenerate, torch.ones_like(sin_omega), sin_omega)
    spherical = torch.sin((1 - tt) * omega) / safe_sin * a + torch.sin(tt * omega) / safe_sin * b
    linear = (1 - tt) * a + tt * b
    return torch.where(degenerate, linear, spherical).to(z0.dtype)
