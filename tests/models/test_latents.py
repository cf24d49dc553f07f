import math

import pytest
import torch

from models import latent_for_seed, latents_for_seeds, lerp, slerp


def test_same_seed_same_latent() -> None:
    a = latents_for_seeds([7, 7, 8], 32)
    assert a.shape == (3, 32) and a.dtype == torch.float32
    assert torch.equal(a[0], a[1])
    assert not torch.equal(a[0], a[2])


def test_latent_matches_design_formula() -> None:
    expected = torch.randn(16, generator=torch.Generator("cpu").manual_seed(123))
    assert torch.equal(latent_for_seed(123, 16), expected)


def test_row_of_a_batch_equals_the_single_seed_latent() -> None:
    batch = latents_for_seeds(list(range(100, 164)), 8)
    for i in (0, 17, 63):
        assert torch.equal(batch[i], latents_for_seeds([100 + i], 8)[0])


def test_truncation_bounds_components_and_is_deterministic() -> None:
    z = latents_for_seeds(list(range(50)), 64, truncation=0.5)
    assert z.abs().max() <= 0.5
    assert torch.equal(z, latents_for_seeds(list(range(50)), 64, truncation=0.5))
    # components already inside the bound keep their untruncated values
    raw = latents_for_seeds([3], 64)[0]
    inside = raw.abs() <= 0.5
    assert torch.equal(latents_for_seeds([3], 64, truncation=0.5)[0][inside], raw[inside])


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_truncation_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="truncation"):
        latent_for_seed(1, 4, truncation=bad)


def test_negative_seed_refused() -> None:
    with pytest.raises(ValueError, match="seed"):
        latent_for_seed(-1, 4)


def test_slerp_endpoints_exact() -> None:
    z0, z1 = latents_for_seeds([1, 2], 128)
    assert torch.equal(slerp(z0, z1, 0.0), z0)
    assert torch.equal(slerp(z0, z1, 1.0), z1)


def test_slerp_norm_interpolates_between_endpoint_norms() -> None:
    z0, z1 = latents_for_seeds([1, 2], 128)
    ts = torch.linspace(0, 1, 11)
    path = slerp(z0.expand(11, -1), z1.expand(11, -1), ts)  # [11, 128]
    norms = path.norm(dim=1)
    lo, hi = sorted((float(z0.norm()), float(z1.norm())))
    assert (norms >= lo - 1e-4).all() and (norms <= hi + 1e-4).all()
    # lerp, by contrast, shrinks towards the middle for near-orthogonal high-dimensional latents
    assert float(lerp(z0, z1, 0.5).norm()) < 0.8 * float(path[5].norm())


def test_slerp_on_unit_circle_follows_the_arc() -> None:
    z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = slerp(z0, z1, 0.5)
    assert torch.allclose(mid, torch.tensor([math.sqrt(0.5), math.sqrt(0.5)]), atol=1e-6)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_slerp_parallel_and_antiparallel_give_no_nan(sign: float) -> None:
    z0 = latents_for_seeds([5], 32)[0]
    z1 = sign * 2.0 * z0
    path = slerp(z0.expand(5, -1), z1.expand(5, -1), torch.linspace(0, 1, 5))
    assert torch.isfinite(path).all()
    assert torch.equal(path[0], z0) and torch.allclose(path[-1], z1)


def test_slerp_zero_vector_gives_no_nan() -> None:
    z = torch.zeros(8)
    assert torch.isfinite(slerp(z, torch.ones(8), 0.3)).all()


def test_lerp_midpoint() -> None:
    assert torch.allclose(lerp(torch.zeros(3), torch.ones(3) * 2, 0.25), torch.full((3,), 0.5))
