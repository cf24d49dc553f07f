"""Seeds and latents for a sampling request: `seed + i` per image, an explicit list, or a seed the server draws."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import torch

from models import SEED_MAX, latents_for_seeds
from service.errors import InvalidRequestError, LimitExceededError

# Seeds the server draws stay below 2**32 so that every client (JavaScript included) reads them back exactly.
_DRAWN_SEED_BOUND = 2**32


def resolve_seeds(seed: int | None, seeds: Sequence[int] | None, n: int | None, max_images: int) -> list[int]:
    """The seed of each image. `seeds` wins; else `seed` (or a drawn one) counts up for `n` images (default 1)."""
    if seeds is not None:
        if len(seeds) > max_images:
            raise LimitExceededError(
                f"{len(seeds)} seeds asked for; at most {max_images} images per request", {"max": max_images}
            )
        return list(seeds)
    count = 1 if n is None else n
    if count > max_images:
        raise LimitExceededError(f"n = {count}; at most {max_images} images per request", {"max": max_images})
    base = secrets.randbelow(_DRAWN_SEED_BOUND) if seed is None else seed
    if base + count - 1 > SEED_MAX:
        raise InvalidRequestError(f"seed + n - 1 must stay <= {SEED_MAX}", {"seed": base, "n": count})
    return list(range(base, base + count))


def latents(seeds: Sequence[int], z_dim: int, truncation: float | None) -> torch.Tensor:
    """[N, z_dim] float32 on the CPU, each row from its own seed (models.latents_for_seeds)."""
    try:
        return latents_for_seeds(seeds, z_dim, truncation)  # [N, z_dim]
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc


class SeededLatents:
    """Latents drawn when `build` is called (on the engine's thread); `value` keeps them for the response."""

    def __init__(self, seeds: Sequence[int], z_dim: int, truncation: float | None) -> None:
        self.seeds = seeds
        self.z_dim = z_dim
        self.truncation = truncation
        self.value: torch.Tensor | None = None

    def build(self) -> torch.Tensor:
        self.value = latents(self.seeds, self.z_dim, self.truncation)  # [N, z_dim]
        return self.value
