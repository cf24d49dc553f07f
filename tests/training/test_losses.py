"""Losses: signs, each variant's whole critic objective and the gradient penalty against critics whose gradient is
known in closed form, and proof that the trainer's critic step computes its loss with these very functions."""

from __future__ import annotations

from typing import Literal

import pytest
import torch
from torch import nn

from training import TrainConfig, Trainer, losses
from training.config import LossConfig
from training.losses import (
    constrain_critic,
    critic_loss,
    critic_objective,
    generator_loss,
    generator_objective,
    gradient_penalty,
    wasserstein_estimate,
)


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


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.6, 0.8], [0.1, -0.2]])
@pytest.mark.parametrize("one_sided", [False, True])
@pytest.mark.parametrize("separate_passes", [False, True])
def test_the_gp_objective_of_a_linear_critic_is_its_closed_form(w, one_sided, separate_passes):
    # C(x) = <w, x> + b: E[C(fake)] - E[C(real)] = <w, mean(fake) - mean(real)>, penalty lambda (|w| - 1)^2 (one-sided:
    # only when |w| > 1), drift eps E[(<w, real> + b)^2]; the Wasserstein estimate is the negated first term.
    wt = torch.tensor(w)
    config = LossConfig(variant="gp", gp_weight=10.0, gp_one_sided=one_sided, drift=0.01)
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    terms = critic_objective(config, LinearCritic(wt), real, fake, separate_passes=separate_passes)
    excess = wt.norm() - 1
    penalty = 10.0 * (excess.clamp(min=0) if one_sided else excess) ** 2
    gap = (fake.mean(0) - real.mean(0)) @ wt
    drift = 0.01 * (real @ wt).pow(2).mean()
    assert terms.penalty.item() == pytest.approx(penalty.item(), rel=1e-5, abs=1e-6)
    assert terms.wasserstein.item() == pytest.approx(-gap.item(), rel=1e-5, abs=1e-6)
    assert terms.loss.item() == pytest.approx((gap + penalty + drift).item(), rel=1e-5, abs=1e-6)
    assert not terms.wasserstein.requires_grad and terms.loss.requires_grad


@pytest.mark.parametrize("variant", ["clip", "spectral"])
def test_variants_without_a_penalty_minimise_the_score_gap_plus_drift(variant):
    wt = torch.tensor([3.0, 4.0])
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    gap = ((fake.mean(0) - real.mean(0)) @ wt).item()
    plain = critic_objective(LossConfig(variant=variant), LinearCritic(wt), real, fake)
    assert plain.penalty.item() == 0.0 and plain.loss.item() == pytest.approx(gap, rel=1e-5, abs=1e-6)
    drifted = critic_objective(LossConfig(variant=variant, drift=0.5), LinearCritic(wt), real, fake)
    assert drifted.loss.item() == pytest.approx(gap + 0.5 * (real @ wt).pow(2).mean().item(), rel=1e-5, abs=1e-6)


def test_the_penalty_uses_the_penalty_critic_and_the_given_interpolation_stream():
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    scored_by, penalised_by = LinearCritic(torch.tensor([1.0, 0.0])), LinearCritic(torch.tensor([3.0, 4.0]))
    config = LossConfig(variant="gp", gp_weight=1.0)
    terms = critic_objective(config, scored_by, real, fake, penalty_critic=penalised_by)
    assert terms.penalty.item() == pytest.approx(16.0)  # (|(3, 4)| - 1)^2, not (|(1, 0)| - 1)^2 = 0
    # The interpolation weights come from the generator passed in, in the same draw as gradient_penalty's.
    quadratic = lambda x: 0.5 * x.pow(2).sum(1)  # noqa: E731  gradient x: the penalty depends on alpha
    a = critic_objective(LossConfig(), quadratic, real, fake, torch.Generator().manual_seed(3))
    b = gradient_penalty(quadratic, real, fake, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.penalty, b)


def test_constrain_critic_clips_weights_for_the_clip_variant_only():
    cases: list[tuple[Literal["clip", "gp", "spectral"], float]] = [("clip", 0.01), ("gp", 4.0), ("spectral", 4.0)]
    for variant, bound in cases:
        critic = LinearCritic(torch.tensor([3.0, -4.0]))
        constrain_critic(LossConfig(variant=variant, clip_value=0.01), critic)
        assert critic.w.abs().max().item() == pytest.approx(bound)


def test_generator_objective_is_minus_the_mean_score_of_the_fakes():
    wt = torch.tensor([3.0, 4.0])
    fake = torch.randn(16, 2, requires_grad=True)
    loss = generator_objective(LinearCritic(wt), fake)
    assert loss.item() == pytest.approx(-(fake @ wt).mean().item(), rel=1e-5)
    loss.backward()
    torch.testing.assert_close(fake.grad, -wt.expand(16, 2) / 16)


def test_the_trainers_critic_step_computes_its_loss_with_these_functions(tmp_path, monkeypatch):
    """The loop's critic step goes through critic_objective and gradient_penalty: the tests above test training."""
    calls: list[torch.Tensor] = []

    def spy(*args, **kwargs):
        calls.append(gradient_penalty(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(losses, "gradient_penalty", spy)
    config = TrainConfig.model_validate(
        {
            "data": {"dataset": "ring8", "heldout": 100},
            "model": {"generator": {"hidden": 8, "depth": 1}, "critic": {"hidden": 8, "depth": 1}},
            "train": {"batch_size": 16, "threads": 1},
            "optim": {"n_critic": 2},
        }
    )
    trainer = Trainer(config, tmp_path, torch.device("cpu"), progress=False)
    stats = trainer.critic_phase()
    assert len(calls) == 2  # one penalty per critic step
    assert stats["gp"] == pytest.approx(sum(c.item() for c in calls) / 2)


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
