"""Seeds per image: seed + i, an explicit list, or one the server draws."""

from __future__ import annotations

import pytest

from models import SEED_MAX
from service.errors import InvalidRequestError, LimitExceededError
from service.inputs.seeds import latents, resolve_seeds


def test_seed_counts_up_and_seeds_are_taken_as_given() -> None:
    assert resolve_seeds(10, None, 3, 64) == [10, 11, 12]
    assert resolve_seeds(None, [5, 1, 5], None, 64) == [5, 1, 5]
    assert resolve_seeds(7, None, None, 64) == [7]


def test_a_drawn_seed_fits_in_32_bits() -> None:
    drawn = {resolve_seeds(None, None, 2, 64)[0] for _ in range(20)}
    assert all(0 <= s < 2**32 for s in drawn) and len(drawn) > 1


def test_limits() -> None:
    with pytest.raises(LimitExceededError):
        resolve_seeds(None, None, 65, 64)
    with pytest.raises(LimitExceededError):
        resolve_seeds(None, list(range(65)), None, 64)
    with pytest.raises(InvalidRequestError, match="seed \\+ n - 1"):
        resolve_seeds(SEED_MAX, None, 2, 64)


def test_latents_are_per_seed() -> None:
    z = latents([3, 4], 8, None)
    assert z.shape == (2, 8)
    assert (latents([4], 8, None)[0] == z[1]).all()
