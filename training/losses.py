"""The WGAN objectives: each variant's whole critic loss, the generator's loss, and the critic's constraint.

The loop calls three functions and nothing else of the objective: `critic_objective` (the critic's loss for the
configured variant, with the figures it logs), `generator_objective` and `constrain_critic` (after each critic
step). The terms they are made of are pure functions of critic scores and, for the penalty, of the critic's
input gradients, so that tests can check each against closed forms.

Conventions: the critic gives higher scores to real data. The critic minimises E[C(fake)] - E[C(real)]
(+ penalty, + drift); the generator minimises -E[C(fake)]. The Wasserstein estimate is E[C(real)] - E[C(fake)].

Variants (`LossConfig.variant`): `gp`, WGAN-GP (Gulrajani et al. 2017), penalises (||grad C(x_hat)|| - 1)^2, or
only its excess over 1 (`gp_one_sided`); `clip`, the original WGAN (Arjovsky et al. 2017), clamps the critic's
weights after every step; `spectral`, a spectral-norm critic (Miyato et al. 2018), needs neither (the norm lives
in the network). Any variant may add the drift term eps * E[C(real)^2] (Karras et al. 2018), which keeps the
scores near zero and so anchors the critic reference the scoring API reports against.

Class-conditional critics take labels [N] beside their images: real and fake batches share one label vector
(the fakes are generated for the real batch's labels), so each interpolate x_hat_i lies between two samples of
class y_i, and the penalty differentiates C(x_hat, y) with respect to the image alone, the label held fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from training.config import LossConfig

ScoreFn = Callable[..., torch.Tensor]  # ([N, ...] images, and labels [N] when conditional) -> [N] scores


def _scores(critic: ScoreFn, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """critic(x) for an unconditional critic, critic(x, labels) for a conditional one."""
    return critic(x) if labels is None else critic(x, labels)


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
    penalty: torch.Tensor = weight * excess.pow(2).mean()
    return penalty


# The largest factor the penalty's inner backward seeds an fp16 graph with. The seed of d sum(scores) / d scores
# is the factor itself, once per sample, and it enters the graph in the scores' dtype: GradScaler's scale starts at
# 65,536, above float16's maximum (65,504), and doubles after every 2,000 clean steps, so passed as it is the seed
# would be inf and the penalty NaN. 2**10 keeps small gradients out of fp16's subnormals and leaves the critic's
# backward five binary orders of magnitude of headroom.
PENALTY_SCALE_CEILING = 2.0**10


def input_gradients(scores: torch.Tensor, x_hat: torch.Tensor, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    """d sum(scores) / d x_hat with `create_graph=True`, so a penalty on it trains the critic.

    `scale` (fp16 loss scaling: a number, or GradScaler's scale as a device tensor, which needs no host sync)
    multiplies the scores before differentiating and divides the gradient after, capped at
    `PENALTY_SCALE_CEILING` so that the seed fits in float16. If the backward still overflows, the penalty is
    inf or NaN, the critic's gradients are too, and GradScaler skips that step and lowers its scale.
    """
    if isinstance(scale, torch.Tensor):
        factor = scale.detach().float().clamp(max=PENALTY_SCALE_CEILING)
    elif scale == 1.0:
        (grad,) = torch.autograd.grad(scores.float().sum(), x_hat, create_graph=True)
        return grad
    else:
        factor = torch.tensor(min(float(scale), PENALTY_SCALE_CEILING), device=scores.device)
    (grad,) = torch.autograd.grad(scores.float().sum() * factor, x_hat, create_graph=True)
    return grad / factor.to(grad.dtype)


def gradient_penalty(
    critic: ScoreFn,
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
    target: float = 1.0,
    generator: torch.Generator | None = None,
    one_sided: bool = False,
    scale: float | torch.Tensor = 1.0,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """lambda * E[(||grad_x C(x_hat)||_2 - target)^2] at x_hat = alpha real + (1 - alpha) fake.

    With `labels` [N] (a conditional critic; real and fake samples i both of class labels[i]) the critic scores
    C(x_hat, labels) and the gradient is taken with respect to x_hat only: the label is held fixed.

    One alpha ~ U[0, 1] per sample, broadcast over its other dimensions; the fake batch is detached (the penalty
    trains the critic only); the norm is over each sample's flattened gradient; `create_graph=True` so the
    penalty itself can be differentiated with respect to the critic's parameters. `scale` is the fp16 loss scale
    (see `input_gradients`); it does not change the value.
    """
    x_hat = interpolates(real, fake, generator)  # [N, ...]
    scores = _scores(critic, x_hat, labels)  # [N]
    return penalty_from_gradients(input_gradients(scores, x_hat, scale=scale), weight, target, one_sided)


@dataclass(frozen=True)
class CriticTerms:
    """The critic's loss for one batch and the figures the loop logs from the same forward pass."""

    loss: torch.Tensor  # [] what the critic's optimiser minimises: critic loss + penalty + drift
    wasserstein: torch.Tensor  # [] E[C(real)] - E[C(fake)], detached
    penalty: torch.Tensor  # [] the gradient penalty (zero for the variants without one)


def critic_objective(
    config: LossConfig,
    critic: ScoreFn,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    separate_passes: bool = False,
    penalty_critic: ScoreFn | None = None,
    scale: float | torch.Tensor = 1.0,
    labels: torch.Tensor | None = None,
) -> CriticTerms:
    """The whole critic objective of `config.variant` on one real and one fake batch of the same shape.

    Scores both batches in one critic pass (per-sample critics score them exactly as two passes would), or in two
    with `separate_passes` (a batch-norm critic must see real and fake apart). `gp` adds the gradient penalty at
    interpolates drawn from `generator`, computed with `penalty_critic` when given (under DDP: the unwrapped
    critic, see distributed.py) at fp16 loss scale `scale`; a non-zero `config.drift` adds the drift term.
    `labels` [N] is the class of real[i] and fake[i] alike, for a conditional critic.
    """
    if separate_passes:
        real_scores = _scores(critic, real, labels).float()  # [N]
        fake_scores = _scores(critic, fake, labels).float()  # [N]
    else:
        both = None if labels is None else torch.cat([labels, labels])  # [2N]
        real_scores, fake_scores = _scores(critic, torch.cat([real, fake]), both).float().split(real.shape[0])
    loss = critic_loss(real_scores, fake_scores)
    penalty = torch.zeros((), device=loss.device)
    if config.uses_gradient_penalty:
        penalty_critic = critic if penalty_critic is None else penalty_critic
        penalty = gradient_penalty(
            penalty_critic,
            real,
            fake,
            config.gp_weight,
            config.gp_target,
            generator,
            config.gp_one_sided,
            scale=scale,
            labels=labels,
        )
        loss = loss + penalty
    if config.drift:
        loss = loss + drift_penalty(real_scores, config.drift)
    return CriticTerms(loss, wasserstein_estimate(real_scores, fake_scores).detach(), penalty)


def generator_objective(critic: ScoreFn, fake: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """-E[C(G(z))] for a generated batch `fake` that still carries the generator's graph; the same for every variant.

    A conditional critic scores each fake against the label it was generated for, `labels` [N]."""
    return generator_loss(_scores(critic, fake, labels).float())


def constrain_critic(config: LossConfig, critic: nn.Module) -> None:
    """What a variant does to the critic after each optimiser step: `clip` clamps its weights, the others nothing."""
    if config.variant == "clip":
        clip_weights(critic, config.clip_value)


@torch.no_grad()
def clip_weights(module: nn.Module, clip: float) -> None:
    """Clamp every parameter to [-clip, clip] (the original WGAN's Lipschitz constraint)."""
    for p in module.parameters():
        p.clamp_(-clip, clip)
