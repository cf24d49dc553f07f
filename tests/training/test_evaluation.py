"""Mode coverage and high-quality share on cases with known answers."""

from __future__ import annotations

import pytest
import torch

from models import build_reference
from training.data.toy import GRID25_STD, RING8_STD, grid25_centres, ring8_centres
from training.evaluation import critic_figures, mixture_for, mode_coverage


def test_samples_exactly_at_the_centres_cover_every_mode_at_full_quality():
    centres = grid25_centres()
    samples = centres.repeat(100, 1)  # 2,500 samples
    cov = mode_coverage(samples, centres, GRID25_STD)
    assert cov["modes_covered"] == cov["modes_total"] == 25
    assert cov["high_quality_share"] == 1.0
    assert cov["samples_per_mode"] == [100] * 25


def test_samples_all_at_one_centre_cover_one_mode():
    centres = ring8_centres()
    cov = mode_coverage(centres[3].repeat(2500, 1), centres, RING8_STD)
    assert cov["modes_covered"] == 1 and cov["high_quality_share"] == 1.0


def test_three_sigma_boundary_and_far_samples():
    centres = ring8_centres()
    inside = centres[0] + torch.tensor([2.9 * RING8_STD, 0.0])
    outside = centres[1] + torch.tensor([0.0, 3.1 * RING8_STD])
    nowhere = torch.tensor([0.0, 0.0])
    cov = mode_coverage(torch.stack([inside, outside, nowhere, torch.tensor([float("nan"), 0.0])]), centres, RING8_STD)
    assert cov["modes_covered"] == 1
    assert cov["high_quality_share"] == pytest.approx(0.25)


def test_mixture_for_known_datasets_only():
    grid25, ring8 = mixture_for("grid25"), mixture_for("ring8")
    assert grid25 is not None and grid25[1] == GRID25_STD
    assert ring8 is not None and ring8[0].shape == (8, 2)
    assert mixture_for("swissroll") is None and mixture_for("mnist5k") is None


def test_critic_figures_place_fakes_within_the_real_reference():
    reference = build_reference(torch.linspace(0, 1, 101), torch.zeros(10))
    figures = critic_figures(reference, torch.full((10,), 0.25))
    assert figures["fake_mean_percentile"] == pytest.approx(25.0)
    assert figures["wasserstein_estimate"] == pytest.approx(0.25)
