"""Quality figures: mode coverage / high-quality share for Gaussian mixtures, critic statistics for images, and
`evaluate_networks`, which a run's checkpoints carry: the critic reference and the figures of its networks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from models import CriticReference, ImageGeneratorConfig, build_class_references, build_reference
from training import image_metrics
from training.config import TrainConfig
from training.data.toy import GRID25_STD, RING8_STD, grid25_centres, ring8_centres
from training.networks import eval_mode

HIGH_QUALITY_SIGMAS = 3.0
DEFAULT_POINT_SAMPLES = 2500


def mixture_for(dataset: str) -> tuple[torch.Tensor, float] | None:
    """(centres, std) of a known Gaussian-mixture dataset, or None (swissroll, npz, images)."""
    if dataset == "ring8":
        return ring8_centres(), RING8_STD
    if dataset == "grid25":
        return grid25_centres(), GRID25_STD
    return None


def mode_coverage(
    samples: torch.Tensor, centres: torch.Tensor, std: float, sigmas: float = HIGH_QUALITY_SIGMAS
) -> dict[str, Any]:
    """High quality = within `sigmas` * std of the nearest centre; a mode is covered by >= 1 such sample."""
    x = samples.detach().double().cpu()  # [N, D]
    c = centres.double().cpu()  # [K, D]
    dist = torch.cdist(x, c)  # [N, K]
    nearest_dist, nearest = dist.min(dim=1)  # [N], [N]
    finite = torch.isfinite(x).all(dim=1)
    good = finite & (nearest_dist <= sigmas * std)
    counts = torch.bincount(nearest[good], minlength=c.shape[0])  # [K]
    n = int(x.shape[0])
    return {
        "samples": n,
        "modes_total": int(c.shape[0]),
        "modes_covered": int((counts > 0).sum()),
        "high_quality_share": float(good.sum()) / n if n else 0.0,
        "high_quality_sigmas": sigmas,
        "samples_per_mode": [int(v) for v in counts],
    }


def cycling_labels(n: int, n_classes: int) -> torch.Tensor:
    """Labels [n]: 0, 1, ..., n_classes - 1, 0, 1, ... (every class equally often, up to one)."""
    return torch.arange(n) % n_classes


@torch.no_grad()
def generate(
    generator: nn.Module,
    n: int,
    z_dim: int,
    seed: int,
    device: torch.device | str = "cpu",
    batch_size: int = 500,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """n samples from fresh N(0, I) latents drawn from `seed` on the CPU (for `labels` [n] when conditional);
    returned on the CPU."""
    gen = torch.Generator("cpu").manual_seed(seed)
    z = torch.randn(n, z_dim, generator=gen)
    if labels is None:
        out = [generator(chunk.to(device)).float().cpu() for chunk in z.split(batch_size)]
    else:
        pairs = zip(z.split(batch_size), labels.split(batch_size), strict=True)
        out = [generator(zc.to(device), yc.to(device)).float().cpu() for zc, yc in pairs]
    return torch.cat(out)


@torch.no_grad()
def critic_scores(
    critic: nn.Module,
    data: torch.Tensor,
    device: torch.device | str = "cpu",
    batch_size: int = 500,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Critic scores [N] on the CPU, in batches (of `data` as samples of `labels` [N] when conditional)."""
    if labels is None:
        return torch.cat([critic(chunk.to(device)).float().cpu() for chunk in data.split(batch_size)])
    pairs = zip(data.split(batch_size), labels.split(batch_size), strict=True)
    return torch.cat([critic(x.to(device), y.to(device)).float().cpu() for x, y in pairs])


def critic_figures(reference: CriticReference, fake_scores: torch.Tensor) -> dict[str, Any]:
    """How generated samples sit within the real-data reference: their mean score and mean/median percentile."""
    scores = fake_scores.double().cpu().numpy()
    pct = reference.percentile(scores)
    return {
        "samples": int(scores.size),
        "critic_mean_fake": float(scores.mean()),
        "critic_mean_real_reference": reference.real.mean,
        "wasserstein_estimate": reference.real.mean - float(scores.mean()),
        "fake_mean_percentile": float(np.mean(pct)),
        "fake_median_percentile": float(np.median(pct)),
    }


@dataclass(frozen=True)
class ReferenceScores:
    """The critic's scores behind a checkpoint's references: of held-out real data and of generated samples (with
    their classes when the model is conditional)."""

    fake: torch.Tensor  # generated samples [n_fake, ...]
    real_scores: torch.Tensor  # [n_real]
    fake_scores: torch.Tensor  # [n_fake]
    real_labels: torch.Tensor | None = None  # [n_real]
    fake_labels: torch.Tensor | None = None  # [n_fake]

    def reference(self) -> CriticReference:
        return build_reference(self.real_scores, self.fake_scores)

    def class_references(self, classes: list[str] | None) -> dict[str, CriticReference] | None:
        """Per class (conditional models); None for an unconditional one."""
        if classes is None or self.real_labels is None:
            return None
        return build_class_references(classes, self.real_scores, self.real_labels, self.fake_scores, self.fake_labels)


def reference_scores(
    generator: nn.Module,
    critic: nn.Module,
    heldout: torch.Tensor,
    n_fake: int,
    z_dim: int,
    seed: int,
    device: torch.device | str,
    n_classes: int = 0,
    heldout_labels: torch.Tensor | None = None,
) -> ReferenceScores:
    """Scores of `heldout` and of `n_fake` samples from latents seeded by `seed`, networks in eval mode. A
    conditional model (`n_classes` > 0, with `heldout_labels`) generates every class in turn and its critic scores
    each sample against its class."""
    if n_classes and heldout_labels is None:
        raise ValueError("a conditional model is scored on labelled held-out data: pass heldout_labels")
    fake_labels = cycling_labels(n_fake, n_classes) if n_classes else None
    with eval_mode(generator, critic):
        fake = generate(generator, n_fake, z_dim, seed=seed, device=device, labels=fake_labels)
        real_scores = critic_scores(critic, heldout, device, labels=heldout_labels)  # [n_real]
        fake_scores = critic_scores(critic, fake, device, labels=fake_labels)  # [n_fake]
    return ReferenceScores(fake, real_scores, fake_scores, heldout_labels, fake_labels)


def evaluate_networks(
    config: TrainConfig,
    generator: nn.Module,
    critic: nn.Module,
    heldout: torch.Tensor,
    device: torch.device,
    n_fake: int,
    final: bool = False,
    heldout_labels: torch.Tensor | None = None,
) -> tuple[ReferenceScores, dict[str, Any]]:
    """(reference scores, metrics) of a run's networks, in eval mode, on `n_fake` samples and the `heldout` data.

    The reference scores make the critic reference (and, for a conditional model, one per class) of held-out real
    data and generated data; the metrics hold the held-out Wasserstein estimate, the critic figures, the share of
    finite samples, for known mixtures the mode coverage and, with `final` for images the classifier knows, the
    classifier figures. Latents are seeded from the config's seed, so the figures of one set of weights do not
    depend on when they are taken. A conditional model generates every class in turn and its critic scores each
    sample against its class (`heldout_labels`).
    """
    z_dim = config.model.generator.z_dim
    n_classes = config.model.n_classes
    if n_classes and heldout_labels is None:
        raise ValueError("a conditional model is evaluated on labelled held-out data: pass heldout_labels")
    real_labels = heldout_labels if n_classes else None
    seed = reference_seed(config.seed)
    scores = reference_scores(generator, critic, heldout, n_fake, z_dim, seed, device, n_classes, real_labels)
    fake, real_scores, fake_scores = scores.fake, scores.real_scores, scores.fake_scores
    reference = scores.reference()
    metrics: dict[str, Any] = {
        "wasserstein_estimate_heldout": float(real_scores.mean() - fake_scores.mean()),
        "critic": critic_figures(reference, fake_scores),
        "finite_samples_share": float(torch.isfinite(fake.flatten(1)).all(dim=1).float().mean()),
    }
    mixture = mixture_for(config.data.dataset)
    if config.model.kind == "points" and mixture is not None:
        with eval_mode(generator):
            points = generate(generator, config.eval.point_samples, z_dim, seed=config.seed + 13, device=device)
        coverage = mode_coverage(points, *mixture)
        metrics.update(
            modes_covered=coverage["modes_covered"],
            modes_total=coverage["modes_total"],
            high_quality_share=coverage["high_quality_share"],
            evaluation=coverage,
        )
    if final and config.model.kind == "image":
        metrics.update(_image_quality(config, generator, heldout, device, real_labels))
    return scores, metrics


def reference_seed(run_seed: int) -> int:
    """The seed of the generated samples a run's critic reference is taken on."""
    return run_seed + 11


def _image_quality(
    config: TrainConfig,
    generator: nn.Module,
    heldout: torch.Tensor,
    device: torch.device,
    heldout_labels: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Classifier figures (Frechet distance, coverage, class KL, precision/recall) where they apply."""
    g = config.model.generator
    if not isinstance(g, ImageGeneratorConfig) or not image_metrics.supports(
        config.data.dataset, g.channels, g.resolution
    ):
        return {}
    n = config.eval.quality_samples
    labels = cycling_labels(n, g.n_classes) if g.n_classes else None
    with eval_mode(generator):
        fake = generate(generator, n, g.z_dim, seed=config.seed + 17, device=device, labels=labels)
    classifier = image_metrics.ClassifierMetrics()
    figures: dict[str, Any] = {"quality": classifier.compare(fake, heldout, "held-out")}
    if labels is not None and heldout_labels is not None:
        figures["class_quality"] = classifier.compare_by_class(fake, labels, heldout, heldout_labels)
    return figures
