"""The WGAN objectives as pure functions of critic scores (and, for the penalty, of the critic's gradients).

Conventions: the critic gives higher scores to real data. The critic minimises E[C(fake)] - E[C(real)]
(+ penalty, + drift); the generator minimises -E[C(fake)]. The Wasserstein estimate is E[C(real)] - E[C(fake)].

Variants: WGAN-GP (Gulrajani et al. 2017) penalises (||grad C(x_hat)|| - 1)^2, or only its excess over 1
(`one_sided`); the original WGAN (Arjovsky et al. 2017) clips the critic's weights (`clip_weights`); a
spectral-norm critic (Miyato et al. 2018) needs neither. The drift term eps * E[C(x)^2] (Karras et al. 2018)
keeps the scores near zero, which anchors the critic reference the scoring API reports against.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[C(fake)] - E[C(real)] (the negated Wasserstein estimate), without the penalty."""
    return fake_scores.mean() - real_scores.mean()


def generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """-E[C(G(z))]."""
    return -fake_scores.mean()


def wasserstein_estimate(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[C(real)] - E[C(fake)]: the critic's estimate of the Wasserstein-1 distance (up to its Lipschitz constant)."""
    return real_scores.mean() - fake_scores.mean()


def drift_penalty(real_scores: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """eps * E[C(real)^2]: keeps the critic's scores from drifting away from zero."""
    return eps * real_scores.float().pow(2).mean()


def interpolates(real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """x_hat = alpha real + (1 - alpha) fake, one alpha ~ U[0, 1] per sample (drawn on the CPU), both detached."""
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} batches must have the same shape")
    alpha_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(alpha_shape, generator=generator, dtype=torch.float32, device="cpu")
    alpha = alpha.to(device=real.device, dtype=real.dtype)
    return (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)  # [N, ...]


def penalty_from_gradients(
    grad: torch.Tensor, weight: float = 10.0, target: float = 1.0, one_sided: bool = False
) -> torch.Tensor:
    """weight * E[(||g|| - target)^2] (or E[max(0, ||g|| - target)^2]); the norm is taken in float32."""
    norms = grad.float().flatten(1).norm(2, dim=1)  # [N]
    excess = norms - target
    if one_sided:
        excess = excess.clamp(min=0.0)
    return weight * excess.pow(2).mean()


def input_gradients(scores: torch.Tensor, x_hat: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """d sum(scores) / d x_hat with `create_graph=True`, so a penalty on it trains the critic.

    `scale` multiplies the scores before differentiating and divides the gradient after (fp16 loss scaling).
    """
    (grad,) = torch.autograd.grad((scores.float().sum() * scale), x_hat, create_graph=True)
    return grad / scale if scale != 1.0 else grad


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
    target: float = 1.0,
    generator: torch.Generator | None = None,
    one_sided: bool = False,
) -> torch.Tensor:
    """lambda * E[(||grad_x C(x_hat)||_2 - target)^2] at x_hat = alpha real + (1 - alpha) fake.

    One alpha ~ U[0, 1] per sample, broadcast over its other dimensions; the fake batch is detached (the penalty
    trains the critic only); the norm is over each sample's flattened gradient; `create_graph=True` so the
    penalty itself can be differentiated with respect to the critic's parameters.
    """
    x_hat = interpolates(real, fake, generator)
    return penalty_from_gradients(input_gradients(critic(x_hat), x_hat), weight, target, one_sided)


@torch.no_grad()
def clip_weights(module: nn.Module, clip: float) -> None:
    """Clamp every parameter to [-clip, clip] (the original WGAN's Lipschitz constraint)."""
    for p in module.parameters():
        p.clamp_(-clip, clip)
