"""The WGAN-GP objective as pure functions of critic scores (and, for the penalty, of the critic itself).

Conventions: the critic gives higher scores to real data. The critic minimises E[C(fake)] - E[C(real)]
(+ penalty); the generator minimises -E[C(fake)]. The Wasserstein estimate is E[C(real)] - E[C(fake)].
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[C(fake)] - E[C(real)] (the negated Wasserstein estimate), without the penalty."""
    return fake_scores.mean() - real_scores.mean()


def generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """-E[C(G(z))]."""
    return -fake_scores.mean()


def wasserstein_estimate(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[C(real)] - E[C(fake)]: the critic's estimate of the Wasserstein-1 distance (up to its Lipschitz constant)."""
    return real_scores.mean() - fake_scores.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
    target: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """lambda * E[(||grad_x C(x_hat)||_2 - target)^2] at x_hat = alpha real + (1 - alpha) fake.

    One alpha ~ U[0, 1] per sample, broadcast over its other dimensions; the fake batch is detached (the penalty
    trains the critic only); the norm is over each sample's flattened gradient; `create_graph=True` so the
    penalty itself can be differentiated with respect to the critic's parameters.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} batches must have the same shape")
    n = real.shape[0]
    alpha_shape = (n,) + (1,) * (real.dim() - 1)
    alpha = torch.rand(alpha_shape, generator=generator, dtype=real.dtype, device="cpu").to(real.device)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)  # [N, ...]
    scores = critic(x_hat)  # [N]
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)  # [N]
    return weight * ((norms - target) ** 2).mean()
