"""Quantiles of critic scores on held-out real (and generated) data, to turn a raw score into a percentile.

A class-conditional checkpoint also carries one reference per class (`build_class_references`): the critic's scores
of the held-out images of that class against that class, and of generated images of that class. A projection
critic's scores of different classes sit on different scales, so a score is placed among its own class's.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_PROBS: tuple[float, ...] = tuple(i / 100 for i in range(101))


class ScoreQuantiles(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1)
    mean: float
    std: float
    quantiles: list[float] = Field(min_length=2)


class CriticReference(BaseModel):
    """`quantiles[i]` is the probs[i]-quantile of the critic's scores on that data."""

    model_config = ConfigDict(extra="forbid")

    probs: list[float] = Field(min_length=2)
    real: ScoreQuantiles
    fake: ScoreQuantiles | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CriticReference:
        if any(b < a for a, b in pairwise(self.probs)):
            raise ValueError("critic_reference.probs must be non-decreasing")
        if self.probs[0] < 0 or self.probs[-1] > 1:
            raise ValueError("critic_reference.probs must lie in [0, 1]")
        for name, q in (("real", self.real), ("fake", self.fake)):
            if q is None:
                continue
            if len(q.quantiles) != len(self.probs):
                raise ValueError(f"critic_reference.{name}.quantiles must have one value per prob")
            if not all(np.isfinite(q.quantiles)):
                raise ValueError(f"critic_reference.{name}.quantiles must be finite")
        return self

    def percentile(self, scores: np.ndarray | list[float]) -> np.ndarray:
        """Where each raw score falls within the real-data scores, 0..100 (clamped at the ends)."""
        xs = np.asarray(self.real.quantiles, dtype=np.float64)
        ps = np.asarray(self.probs, dtype=np.float64) * 100.0
        # np.interp needs increasing xs; ties (flat stretches) are fine for it, but average them out
        # so a score equal to a repeated quantile lands in the middle of its stretch.
        uniq, inverse = np.unique(xs, return_inverse=True)
        mean_ps = np.bincount(inverse, weights=ps) / np.bincount(inverse)
        return np.interp(np.asarray(scores, dtype=np.float64), uniq, mean_ps, left=0.0, right=100.0)


def _summary(scores: torch.Tensor, probs: torch.Tensor) -> ScoreQuantiles:
    s = scores.detach().double().flatten().cpu()
    if s.numel() == 0 or not torch.isfinite(s).all():
        raise ValueError("critic scores for the reference must be non-empty and finite")
    return ScoreQuantiles(
        count=s.numel(),
        mean=float(s.mean()),
        std=float(s.std()) if s.numel() > 1 else 0.0,
        quantiles=[float(v) for v in torch.quantile(s, probs)],
    )


def build_reference(
    real_scores: torch.Tensor, fake_scores: torch.Tensor | None = None, probs: tuple[float, ...] = DEFAULT_PROBS
) -> CriticReference:
    p = torch.tensor(probs, dtype=torch.float64)
    return CriticReference(
        probs=list(probs),
        real=_summary(real_scores, p),
        fake=_summary(fake_scores, p) if fake_scores is not None else None,
    )


def build_class_references(
    classes: list[str],
    real_scores: torch.Tensor,
    real_labels: torch.Tensor,
    fake_scores: torch.Tensor | None = None,
    fake_labels: torch.Tensor | None = None,
    probs: tuple[float, ...] = DEFAULT_PROBS,
) -> dict[str, CriticReference]:
    """class name -> its reference, from scores [N] and their class indices [N]. A class without held-out real
    samples has no reference of its own (the overall reference stands in for it)."""
    if real_scores.shape != real_labels.shape:
        raise ValueError("real_scores and real_labels must have the same shape [N]")
    if (fake_scores is None) != (fake_labels is None):
        raise ValueError("give fake_scores and fake_labels together")
    references: dict[str, CriticReference] = {}
    for index, name in enumerate(classes):
        real = real_scores[real_labels == index]
        if real.numel() == 0:
            continue
        fake = None
        if fake_scores is not None and fake_labels is not None:
            fake = fake_scores[fake_labels == index]
            fake = fake if fake.numel() else None
        references[name] = build_reference(real, fake, probs)
    return references
