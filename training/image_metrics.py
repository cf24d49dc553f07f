"""Image quality figures in the feature space of the project's mnist5k classifier.

- Frechet distance between Gaussians fitted to the 128-d penultimate features of generated and held-out real
  images (the FID recipe with our classifier in place of Inception, so values are not comparable with FIDs).
- Class coverage: classes predicted for at least `COVERAGE_MIN_SHARE` of generated samples.
- KL(generated class histogram || real class histogram), both from the classifier's predictions, with
  `HISTOGRAM_EPS` added to every bin.
- Class-conditional models: accuracy on the requested class (the share of samples generated for class k that the
  classifier predicts as k), and the Frechet distance of each class's samples to that class's held-out images.
- Precision / recall with k-NN manifolds (Kynkaanniemi et al. 2019, k = 3): precision is the share of generated
  samples inside the union of real k-NN balls, recall the share of real samples inside the generated ones.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from scipy import linalg

from training.classifier import N_CLASSES, load_classifier

KNN_K = 3
COVERAGE_MIN_SHARE = 0.01
HISTOGRAM_EPS = 1e-6
SUPPORTED = {"mnist5k": (1, 32)}  # dataset -> (channels, resolution) the classifier was trained on


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) for features [N, D] and [M, D]."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # a singular product is handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # near-singular product: regularise both covariances (as the FID code does)
        offset = np.eye(a.shape[1]) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = np.real(root)
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))
    return max(value, 0.0)


def _kth_neighbour_radii(feats: torch.Tensor, k: int) -> torch.Tensor:
    dist = torch.cdist(feats, feats)  # [N, N]
    return dist.kthvalue(k + 1, dim=1).values  # [N]; the 0th neighbour is the point itself


def _inside_share(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    dist = torch.cdist(points, centres)  # [P, C]
    return float((dist <= radii[None, :]).any(dim=1).double().mean())


def precision_recall(
    real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = KNN_K
) -> tuple[float, float]:
    """(precision, recall) of `fake` against `real` with k-NN balls in feature space."""
    r = torch.as_tensor(np.asarray(real), dtype=torch.float64)
    f = torch.as_tensor(np.asarray(fake), dtype=torch.float64)
    return _inside_share(f, r, _kth_neighbour_radii(r, k)), _inside_share(r, f, _kth_neighbour_radii(f, k))


def class_histogram(predictions: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    return np.bincount(np.asarray(predictions, dtype=np.int64), minlength=n_classes) / max(1, len(predictions))


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = HISTOGRAM_EPS) -> float:
    """KL(p || q) in nats, both smoothed by eps and renormalised."""
    p = (np.asarray(p, dtype=np.float64) + eps) / (1 + eps * len(p))
    q = (np.asarray(q, dtype=np.float64) + eps) / (1 + eps * len(q))
    return float(np.sum(p * np.log(p / q)))


def supports(dataset: str | None, channels: int, resolution: int) -> bool:
    """Whether the classifier figures apply: the dataset it was trained on, at its geometry."""
    return dataset in SUPPORTED and SUPPORTED[dataset] == (channels, resolution)


class ClassifierMetrics:
    """Loads the shipped classifier once; `compare` computes every figure for a generated and a real set."""

    supports = staticmethod(supports)  # whether the figures apply to (dataset, channels, resolution)

    def __init__(self) -> None:
        loaded = load_classifier()
        self.model = loaded.model
        self.test_accuracy = loaded.test_accuracy
        self.info = loaded.info

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
        """(features [N, 128], predicted classes [N]) of images [N, 1, 32, 32] in [-1, 1]."""
        feats, preds = [], []
        for chunk in images.detach().float().cpu().clamp(-1, 1).split(batch_size):
            f = self.model.features(chunk)
            feats.append(f)
            preds.append(self.model.head(f).argmax(1))
        return torch.cat(feats).numpy(), torch.cat(preds).numpy()

    def compare(self, fake: torch.Tensor, real: torch.Tensor, real_split: str) -> dict[str, Any]:
        f_feat, f_pred = self.embed(fake)
        r_feat, r_pred = self.embed(real)
        f_hist, r_hist = class_histogram(f_pred), class_histogram(r_pred)
        precision, recall = precision_recall(r_feat, f_feat)
        return {
            "frechet_distance": frechet_distance(f_feat, r_feat),
            "classes_covered": int((f_hist >= COVERAGE_MIN_SHARE).sum()),
            "classes_total": N_CLASSES,
            "class_kl": kl_divergence(f_hist, r_hist),
            "precision": precision,
            "recall": recall,
            "class_histogram": [round(float(v), 4) for v in f_hist],
            "protocol": {
                "generated_samples": int(fake.shape[0]),
                "real_samples": int(real.shape[0]),
                "real_split": real_split,
                "features": "penultimate layer (128-d) of the mnist5k classifier (training/classifier.py)",
                "classifier_test_accuracy": self.test_accuracy,
                "classifier_test_split": self.info.get("test_split", ""),
                "frechet": "Gaussian fits to both feature sets; not comparable with Inception FIDs",
                "coverage": (
                    f"a class is covered when >= {COVERAGE_MIN_SHARE:.0%} of generated samples are predicted as it"
                ),
                "class_kl": f"KL(generated || real) of predicted class histograms, eps {HISTOGRAM_EPS:g} per bin",
                "precision_recall": f"k-NN manifolds, k = {KNN_K} (Kynkaanniemi et al. 2019)",
            },
        }

    def compare_by_class(
        self, fake: torch.Tensor, fake_labels: torch.Tensor, real: torch.Tensor, real_labels: torch.Tensor
    ) -> dict[str, Any]:
        """Figures of a class-conditional model: `fake[i]` was generated for class `fake_labels[i]` (the classifier's
        class index), `real[j]` is of class `real_labels[j]`."""
        f_feat, f_pred = self.embed(fake)
        r_feat, _ = self.embed(real)
        asked, truth = fake_labels.cpu().numpy(), real_labels.cpu().numpy()
        per_class = []
        for k in range(N_CLASSES):
            f_k, r_k = f_feat[asked == k], r_feat[truth == k]
            if len(f_k) < 2 or len(r_k) < 2:
                continue
            per_class.append(
                {
                    "class": k,
                    "samples": len(f_k),
                    "real_samples": len(r_k),
                    "accuracy": float((f_pred[asked == k] == k).mean()),
                    "frechet_distance": frechet_distance(f_k, r_k),
                }
            )
        return {
            "class_accuracy": float((f_pred == asked).mean()),
            "per_class": per_class,
            "protocol": {
                "class_accuracy": "share of generated samples the classifier predicts as the class they were asked for",
                "per_class_frechet": "each class's generated features against that class's held-out features",
                "real_samples": int(real.shape[0]),
            },
        }
