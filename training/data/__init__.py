"""Offline datasets: toy 2-D mixtures, mnist5k, digits, folders of images and npz arrays."""

from __future__ import annotations

from training.config import DataConfig
from training.data.base import DataError, Dataset, MixtureDataset, TensorDataset
from training.data.toy import grid25_centres, ring8_centres

__all__ = [
    "DataError",
    "Dataset",
    "MixtureDataset",
    "TensorDataset",
    "grid25_centres",
    "load_dataset",
    "ring8_centres",
]


def load_dataset(config: DataConfig, kind: str = "image") -> Dataset:
    """Build the dataset a config names. `kind` (the model's) decides whether npz arrays are points or images."""
    spec, held, seed = config.dataset, config.heldout, config.heldout_seed
    if spec in ("ring8", "grid25", "swissroll"):
        from training.data.toy import load_toy

        return load_toy(spec, held, seed)
    if spec == "mnist5k":
        from training.data.mnist import load_mnist5k

        return load_mnist5k(config.resolution, config.channels, held, seed)
    if spec == "digits":
        from training.data.digits import load_digits

        return load_digits(config.resolution, config.channels, held, seed)
    if spec.startswith("folder:"):
        from training.data.folder import load_folder

        return load_folder(spec[len("folder:") :], config.resolution, config.channels, held, seed)
    if spec.startswith("npz:"):
        from training.data.npz import load_npz

        return load_npz(spec[len("npz:") :], kind, config.resolution, config.channels, held, seed)
    raise DataError(f"unknown dataset {spec!r}")
