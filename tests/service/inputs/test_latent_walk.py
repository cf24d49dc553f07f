"""The interpolation path: frame count, shared keyframes once, exact end points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.inputs.latent_walk import Method, frame_count, walk


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_path_passes_through_every_key_exactly(method: Method) -> None:
    keys = torch.randn(4, 16, generator=torch.Generator().manual_seed(0))
    path = walk(keys, steps=5, method=method)
    assert path.latents.shape == (frame_count(4, 5), 16) == (13, 16)
    for k, index in enumerate([0, 4, 8, 12]):
        assert torch.equal(path.latents[index], keys[k])
    assert path.segments.tolist() == [0] * 5 + [1] * 4 + [2] * 4
    assert np.allclose(path.ts[:5], [0, 0.25, 0.5, 0.75, 1.0]) and path.ts[5] == 0.25


def test_slerp_keeps_the_norm_of_equal_norm_keys_and_lerp_does_not() -> None:
    a = torch.tensor([1.0, 0.0])
    b = torch.tensor([0.0, 1.0])
    keys = torch.stack([a, b])
    mid_s = walk(keys, 3, "slerp").latents[1]
    mid_l = walk(keys, 3, "lerp").latents[1]
    assert torch.isclose(mid_s.norm(), torch.tensor(1.0)) and mid_l.norm() < 0.8


def test_parallel_keys_do_not_give_nan() -> None:
    keys = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    assert torch.isfinite(walk(keys, 4, "slerp").latents).all()


def test_refuses_a_path_without_segments() -> None:
    with pytest.raises(ValueError):
        walk(torch.randn(1, 4), 3, "slerp")
