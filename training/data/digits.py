"""digits: scikit-learn's bundled 8x8 handwritten digits (1,797 images), resized to the configured resolution."""

from __future__ import annotations

import numpy as np

from training.data.base import DataError, TensorDataset, labelled_digits
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
    return labelled_digits(
        "digits", images, target, heldout or DEFAULT_HELDOUT, heldout_seed, "sklearn.datasets.load_digits"
    )
