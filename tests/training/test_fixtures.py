"""The shared checkpoint fixtures load, carry a critic reference and generate finite outputs."""

from __future__ import annotations

import torch

from models import latents_for_seeds, load_checkpoint


def test_tiny_points_checkpoint_loads(tiny_points_checkpoint):
    ckpt = load_checkpoint(tiny_points_checkpoint)
    assert tiny_points_checkpoint.name == "tiny-ring8.safetensors"
    assert ckpt.metadata.kind == "points"
    assert ckpt.metadata.critic_reference.fake is not None
    with torch.no_grad():
        out = ckpt.generator(latents_for_seeds([0, 1, 2], ckpt.metadata.z_dim))
    assert out.shape == (3, 2) and torch.isfinite(out).all()
    assert {"modes_covered", "high_quality_share"} <= set(ckpt.metadata.training["final_metrics"])


def test_tiny_image_checkpoint_loads(tiny_image_checkpoint):
    ckpt = load_checkpoint(tiny_image_checkpoint)
    meta = ckpt.metadata
    assert (meta.kind, meta.channels, meta.height, meta.width, meta.z_dim) == ("image", 1, 16, 16, 16)
    assert meta.critic_reference.fake is not None and len(meta.critic_reference.real.quantiles) == 101
    with torch.no_grad():
        images = ckpt.generator(latents_for_seeds([5, 6], meta.z_dim))
        scores = ckpt.critic(images)
    assert images.shape == (2, 1, 16, 16) and torch.isfinite(images).all()
    assert images.abs().max() <= 1.0 and scores.shape == (2,)
