"""Offline WGAN trainer: datasets, losses, the loop, evaluation and plots; CLIs `wgan-train`, `wgan-eval`.

The public face, for the CLIs, benchmarks and tools: `train(config, out_dir, ...)` runs a whole training run;
`Trainer` is the same run held in hand (`step()` one generator iteration, `run()` to the end, `nets` the networks,
`dataset` the data); `load_config` / `config_from_dict` / `TrainConfig` build configs; `load_dataset` the data;
`generate` draws seeded samples from a generator; `ClassifierMetrics` scores images in the mnist5k classifier's
feature space. Other modules are the trainer's own and may change.
"""

from training.config import ConfigError, TrainConfig, config_from_dict, load_config
from training.data import DataError, load_dataset
from training.evaluation import generate
from training.image_metrics import ClassifierMetrics
from training.loop import Trainer, train

__all__ = [
    "ClassifierMetrics",
    "ConfigError",
    "DataError",
    "TrainConfig",
    "Trainer",
    "config_from_dict",
    "generate",
    "load_config",
    "load_dataset",
    "train",
]
