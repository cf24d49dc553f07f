"""Losses: signs, and the gradient penalty against critics whose gradient is known in closed form."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.losses import critic_loss, generator_loss, gradient_penalty, wasserstein_estimate


class LinearCritic(nn.Module):
    """C(x) = <w, flatten(x)> + b: its gradient is w everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w + self.b


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.6, 0.8], [0.1, -0.2]])
def test_gradient_penalty_of_a_linear_critic_is_lambda_times_norm_minus_one_squared(w):
    critic = LinearCritic(torch.tensor(w))
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    penalty = gradient_penalty(critic, real, fake, weight=10.0)
    expected = 10.0 * (torch.tensor(w).norm() - 1) ** 2
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)


def test_gradient_penalty_flattens_each_samples_gradient():
    # C(x) = 0.5 |x|^2 per sample has gradient x; with real == fake the interpolate is x whatever alpha is.
    def critic(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.flatten(1).pow(2).sum(dim=1)

    x = torch.randn(6, 3, 4, 4)
    penalty = gradient_penalty(critic, x, x.clone(), weight=2.0)
    norms = x.flatten(1).norm(dim=1)
    assert penalty.item() == pytest.approx((2.0 * (norms - 1) ** 2).mean().item(), rel=1e-5)


def test_gradient_penalty_uses_one_alpha_per_sample():
    # C(x) = 0.5 |x|^2 with real = 0 and fake = f: x_hat = (1 - alpha) f, so |grad| = (1 - alpha) |f| per sample.
    torch.manual_seed(0)
    fake = torch.ones(4096, 2, 3) / 6**0.5  # |f| = 1 for every sample
    real = torch.zeros_like(fake)
    gen = torch.Generator().manual_seed(5)
    alpha = torch.rand(4096, 1, 1, generator=torch.Generator().manual_seed(5))
    penalty = gradient_penalty(lambda x: 0.5 * x.flatten(1).pow(2).sum(1), real, fake, weight=1.0, generator=gen)
    assert penalty.item() == pytest.approx((alpha.flatten() ** 2).mean().item(), rel=1e-5)


def test_gradient_penalty_is_differentiable_in_the_critic_and_detaches_the_fake_batch():
    w = torch.tensor([3.0, 4.0])
    critic = LinearCritic(w)
    gen_param = nn.Parameter(torch.ones(1))
    fake = torch.randn(16, 2) * gen_param  # part of a "generator" graph
    penalty = gradient_penalty(critic, torch.randn(16, 2), fake, weight=10.0)
    penalty.backward()
    # d/dw of 10 (|w| - 1)^2 = 20 (|w| - 1) w / |w|
    expected = 20 * (w.norm() - 1) * w / w.norm()
    torch.testing.assert_close(critic.w.grad, expected)
    assert gen_param.grad is None


def test_gradient_penalty_refuses_mismatched_batches():
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(LinearCritic(torch.ones(2)), torch.zeros(4, 2), torch.zeros(3, 2))


def test_loss_signs():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0])
    assert wasserstein_estimate(real, fake).item() == pytest.approx(3.0)
    # The critic minimises E[C(fake)] - E[C(real)]: scoring real higher lowers its loss.
    assert critic_loss(real, fake).item() == pytest.approx(-3.0)
    assert critic_loss(real + 1, fake).item() < critic_loss(real, fake).item()
    # The generator minimises -E[C(fake)]: fakes the critic scores higher lower its loss.
    assert generator_loss(fake).item() == pytest.approx(0.0)
    assert generator_loss(fake + 1).item() < generator_loss(fake).item()
