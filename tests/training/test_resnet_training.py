"""The residual networks under the trainer: the penalty, a short CPU run, and checkpoints that rebuild them."""

from __future__ import annotations

import json

import torch

from models import ImageCriticConfig, ImageGeneratorConfig, load_checkpoint
from models.resnet_nets import ResNetCritic, ResNetGenerator
from training import TrainConfig, train
from training.losses import gradient_penalty, input_gradients, interpolates


def resnet_config_dict(iterations: int = 40) -> dict:
    """digits at 16x16 with small residual networks (a paper-shaped network, narrowed for a CPU test)."""
    return {
        "name": "tiny-resnet",
        "seed": 2,
        "data": {"dataset": "digits", "resolution": 16},
        "model": {
            "generator": {"arch": "resnet", "z_dim": 16, "width": 16, "max_width_mult": 1},
            "critic": {"arch": "resnet", "width": 16, "max_width_mult": 1},
        },
        "train": {"iterations": iterations, "batch_size": 16, "sample_every": 0, "threads": 1, "log_every": 1},
        "eval": {"reference_samples": 128, "grid_size": 4},
    }


def test_the_penalty_of_the_resnet_critic_is_its_per_sample_closed_form():
    """Per sample: the penalty of a batch equals the mean of each sample's own (||grad|| - 1)^2 times lambda."""
    config = TrainConfig.model_validate(resnet_config_dict())
    critic = ResNetCritic(config.model.critic)  # type: ignore[arg-type]
    real, fake = torch.randn(4, 1, 16, 16), torch.randn(4, 1, 16, 16)
    got = gradient_penalty(critic, real, fake, weight=10.0, generator=torch.Generator().manual_seed(3))
    x_hat = interpolates(real, fake, torch.Generator().manual_seed(3))
    one_by_one = [input_gradients(critic(x_hat[i : i + 1]), x_hat, scale=1.0)[i].flatten().norm() for i in range(4)]
    torch.testing.assert_close(got, 10.0 * torch.stack([(n - 1) ** 2 for n in one_by_one]).mean())


def test_a_short_resnet_run_starts_learning_and_its_checkpoint_rebuilds_the_networks(tmp_path):
    path = train(TrainConfig.model_validate(resnet_config_dict(40)), tmp_path, device="cpu", progress=False)
    ckpt = load_checkpoint(path)
    assert isinstance(ckpt.generator, ResNetGenerator) and isinstance(ckpt.critic, ResNetCritic)
    g, c = ckpt.metadata.generator, ckpt.metadata.critic
    assert isinstance(g, ImageGeneratorConfig) and isinstance(c, ImageCriticConfig)
    assert g.arch == c.arch == "resnet" and c.norm == "none"
    figures = ckpt.metadata.training["final_metrics"]
    assert figures["wasserstein_estimate_heldout"] > 0 and figures["finite_samples_share"] == 1.0
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    first, last = records[0], [r for r in records if "wasserstein" in r][-1]
    assert last["wasserstein"] > first["wasserstein"]  # the critic tells real from generated better than at first
