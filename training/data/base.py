"""What every dataset gives the loop: a way to draw training batches and a fixed held-out split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch


class DataError(ValueError):
    """A dataset cannot be loaded; the message says which and why."""


@dataclass
class Dataset:
    """Training data plus a held-out split, already in the model's value range.

    Images are float32 [N, C, H, W] in [-1, 1]; points are float32 [N, D]. Labelled data also has `classes` (the
    class names, in label order) and `heldout_labels` (int64 [N_heldout] indices into `classes`).
    """

    name: str
    kind: Literal["points", "image"]
    heldout: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)
    classes: list[str] | None = None
    heldout_labels: torch.Tensor | None = None

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(samples [n, ...], labels int64 [n]) drawn together; only for labelled data."""
        raise DataError(f"dataset {self.name!r} has no labels")

    def sample_labels(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Labels int64 [n] drawn with the training set's class frequencies; only for labelled data."""
        raise DataError(f"dataset {self.name!r} has no labels")

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.heldout.shape[1:])

    def summary(self) -> dict[str, Any]:
        labelled = {"class_names": list(self.classes)} if self.classes is not None else {}
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": list(self.sample_shape),
            "heldout": int(self.heldout.shape[0]),
            **self.info,
            **labelled,
        }


@dataclass
class TensorDataset(Dataset):
    """A finite training set held in memory; batches are drawn uniformly with replacement."""

    train: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    train_labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.train.shape[0] == 0:
            raise DataError(f"dataset {self.name!r} has no training samples")
        if self.train.shape[1:] != self.heldout.shape[1:]:
            raise DataError(f"dataset {self.name!r}: training and held-out shapes differ")
        self.info.setdefault("train", int(self.train.shape[0]))
        labels = (self.classes, self.train_labels, self.heldout_labels)
        if any(x is not None for x in labels) and not all(x is not None for x in labels):
            raise DataError(f"dataset {self.name!r}: classes, training labels and held-out labels go together")
        if self.classes is not None and self.train_labels is not None and self.heldout_labels is not None:
            for split, data, y in (
                ("training", self.train, self.train_labels),
                ("held-out", self.heldout, self.heldout_labels),
            ):
                if y.shape != (data.shape[0],):
                    raise DataError(f"dataset {self.name!r}: {split} labels must be one per sample")
                if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(self.classes)):
                    raise DataError(f"dataset {self.name!r}: {split} labels must lie in [0, {len(self.classes)})")

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(self.train.shape[0], (n,), generator=generator)
        return self.train[idx]

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self.train_labels is None:
            return super().sample_labelled(n, generator)
        idx = torch.randint(self.train.shape[0], (n,), generator=generator)
        return self.train[idx], self.train_labels[idx]

    def sample_labels(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.train_labels is None:
            return super().sample_labels(n, generator)
        return self.train_labels[torch.randint(self.train.shape[0], (n,), generator=generator)]


Sampler = Callable[[int, torch.Generator], torch.Tensor]  # (n, generator) -> [n, 2] points


@dataclass
class MixtureDataset(Dataset):
    """An infinite 2-D distribution: every batch is fresh samples. `centres`/`std` are set for Gaussian mixtures."""

    sampler: Sampler = field(default=lambda n, g: torch.empty(0))
    centres: torch.Tensor | None = None
    std: float | None = None

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.sampler(n, generator)


def stratified_split(labels: np.ndarray, heldout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, heldout): `heldout // n_classes` per class (the remainder from the first classes), fixed by
    seed."""
    classes = np.unique(labels)
    per_class = np.full(len(classes), heldout // len(classes))
    per_class[: heldout % len(classes)] += 1
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for cls, k in zip(classes, per_class, strict=True):
        members = np.flatnonzero(labels == cls)
        if k > len(members) - 1:
            raise DataError(f"cannot hold out {k} samples of class {cls}: it has only {len(members)}")
        held.append(rng.choice(members, size=int(k), replace=False))
    held_idx = np.sort(np.concatenate(held))
    train_idx = np.setdiff1d(np.arange(len(labels)), held_idx)
    return train_idx, held_idx


def random_split(n: int, heldout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, heldout) for unlabelled data, fixed by seed; at least one sample stays in training."""
    if n < 2:
        raise DataError(f"need at least 2 samples to hold some out, got {n}")
    heldout = min(heldout, n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[heldout:]), np.sort(perm[:heldout])


def default_heldout(n: int) -> int:
    """10 % of the data, at least 1."""
    return max(1, round(0.1 * n))


def labelled_digits(
    name: str, images: torch.Tensor, labels: np.ndarray, heldout: int, heldout_seed: int, source: str
) -> TensorDataset:
    """A digit data set (classes "0".."9") split by class: `images` [N, C, H, W], `labels` [N] in 0..9."""
    train_idx, held_idx = stratified_split(labels, heldout, heldout_seed)
    targets = torch.from_numpy(labels.astype(np.int64))  # [N]
    return TensorDataset(
        name=name,
        kind="image",
        heldout=images[held_idx],
        train=images[train_idx],
        classes=[str(d) for d in range(10)],
        train_labels=targets[train_idx],
        heldout_labels=targets[held_idx],
        info={"classes": 10, "source": source},
    )
