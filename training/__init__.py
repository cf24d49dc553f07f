"""Offline WGAN-GP trainer: datasets, losses, the loop, evaluation and plots; CLIs `wgan-train`, `wgan-eval`."""

from training.config import ConfigError, TrainConfig, config_from_dict, load_config
from training.data import DataError, load_dataset
from training.loop import train

__all__ = ["ConfigError", "DataError", "TrainConfig", "config_from_dict", "load_config", "load_dataset", "train"]
