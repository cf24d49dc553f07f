"""Bucket choice and padding for fixed-shape forward passes, checked on the CPU."""

from __future__ import annotations

import pytest
import torch

from models import latents_for_seeds, load_checkpoint
from service.inference.buckets import bucket_for, bucket_sizes, fill_padded


@pytest.mark.parametrize(
    ("max_batch_size", "expected"),
    [
        (1, [1]),
        (2, [1, 2]),
        (16, [1, 2, 4, 8, 16]),
        (48, [1, 2, 4, 8, 16, 32, 48]),
        (256, [1, 2, 4, 8, 16, 32, 64, 128, 256]),
    ],
)
def test_buckets_are_powers_of_two_and_the_largest_batch(max_batch_size, expected):
    assert bucket_sizes(max_batch_size) == expected


def test_bucket_sizes_refuse_an_empty_batch():
    with pytest.raises(ValueError, match="at least 1"):
        bucket_sizes(0)


def test_every_size_gets_the_smallest_bucket_that_holds_it():
    buckets = bucket_sizes(48)
    chosen = {n: bucket_for(n, buckets) for n in range(1, 49)}
    assert chosen[1] == 1 and chosen[2] == 2 and chosen[3] == 4 and chosen[5] == 8
    assert chosen[17] == 32 and chosen[32] == 32 and chosen[33] == 48 and chosen[48] == 48
    assert all((b is not None and n <= b < 2 * n) or b == 48 for n, b in chosen.items())
    assert bucket_for(49, buckets) is None
    with pytest.raises(ValueError):
        bucket_for(0, buckets)


def test_fill_padded_copies_the_rows_and_zeroes_the_padding():
    buffer = torch.full((8, 3), 7.0)  # stale values from an earlier batch
    rows = torch.arange(15, dtype=torch.float32).reshape(5, 3) + 1
    padded = fill_padded(buffer, rows, 8)
    assert padded.shape == (8, 3) and padded.data_ptr() == buffer.data_ptr()
    assert torch.equal(padded[:5], rows) and torch.equal(padded[5:], torch.zeros(3, 3))
    smaller = fill_padded(buffer, rows[:3], 4)
    assert smaller.shape == (4, 3) and torch.equal(smaller[:3], rows[:3]) and torch.equal(smaller[3], torch.zeros(3))


@pytest.mark.parametrize(("n", "bucket", "rows_shape"), [(5, 4, (5, 3)), (3, 16, (3, 3)), (2, 4, (2, 4))])
def test_fill_padded_refuses_what_does_not_fit(n, bucket, rows_shape):
    with pytest.raises(ValueError):
        fill_padded(torch.zeros(8, 3), torch.ones(rows_shape), bucket)


def test_a_padded_batch_gives_the_unpadded_images(tiny_image_checkpoint):
    """Generators run in eval mode, so the padding rows cannot change the images of the real ones."""
    checkpoint = load_checkpoint(tiny_image_checkpoint)
    generator = checkpoint.generator
    z = latents_for_seeds(range(5), checkpoint.metadata.z_dim)  # [5, z_dim]
    with torch.inference_mode():
        unpadded = generator(z)  # [5, C, H, W]
        padded = generator(fill_padded(torch.empty(8, z.shape[1]), z, 8))[:5]
    assert (padded - unpadded).abs().max().item() <= 1e-5
