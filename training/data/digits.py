"""digits: scikit-learn's bundled 8x8 handwritten digits (1,797 images), resized to the configured resolution."""

from __future__ import annotations

import numpy as np
import torch

from training.data.base import DataError, TensorDataset, stratified_split
from training.data.images import resize_uint8, uint8_to_tensor

DEFAULT_HELDOUT = 180  # about 10 %, 18 per class


def load_digits(resolution: int, channels: int, heldout: int | None, heldout_seed: int) -> TensorDataset:
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ModuleNotFoundError as exc:
        raise DataError("the digits dataset needs scikit-learn (pip install '.[train]')") from exc
    bunch = sklearn_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]  # [N, 8, 8, 1]
    images = uint8_to_tensor(resize_uint8(pixels, resolution, channels))
    target = np.asarray(bunch.target, dtype=np.int64)
    labels = torch.from_numpy(target)
    train_idx, held_idx = stratified_split(target, heldout or DEFAULT_HELDOUT, heldout_seed)
    return TensorDataset(
        name="digits",
        kind="image",
        heldout=images[held_idx],
        train=images[train_idx],
        classes=[str(d) for d in range(10)],
        train_labels=labels[train_idx],
        heldout_labels=labels[held_idx],
        info={"classes": 10, "source": "sklearn.datasets.load_digits"},
    )
