"""Checkpoint writing: evaluate the run's networks, summarise the run, and save one `.safetensors` file.

The file stores the served generator (the EMA copy when the run keeps one) and the critic, with the metadata
the service reads: the architectures, the critic reference (and for a conditional model one per class) and the
`training` summary, whose `final_metrics`
are the evaluation figures. Periodic checkpoints evaluate on `SNAPSHOT_SAMPLES` generated and held-out samples;
the final one on `eval.reference_samples` and the whole held-out split, with the classifier figures for images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models import make_metadata, save_checkpoint
from training.config import TrainConfig
from training.data import Dataset
from training.evaluation import evaluate_networks
from training.networks import Networks
from training.progress import Progress

SNAPSHOT_SAMPLES = 500  # generated/held-out samples for the critic reference of periodic checkpoints


def run_summary(
    config: TrainConfig,
    dataset: Dataset,
    progress: Progress,
    stopped_by: str,
    metrics: dict[str, Any],
    device: torch.device,
    world_size: int,
) -> dict[str, Any]:
    """The checkpoint's `training` document: dataset, loss, hyper-parameters, how far the run went, final metrics."""
    return {
        "name": config.name,
        "dataset": dataset.summary(),
        "loss": config.loss.model_dump(mode="json"),
        "hyperparameters": {
            **config.optim.model_dump(mode="json"),
            "optimizer": config.optim.resolved(config.loss.variant),
            "batch_size": config.train.batch_size,
            "ema_decay": config.train.ema,
            "seed": config.seed,
            "world_size": world_size,
        },
        "generator_iterations": progress.iteration,
        "planned_iterations": config.train.iterations,
        "stopped_by": stopped_by,
        "wall_time_s": round(progress.elapsed, 3),
        "device": str(device),
        "torch_version": torch.__version__,
        "last_batch": progress.last,
        "final_metrics": metrics,
        "config": config.model_dump(mode="json"),
    }


def write_checkpoint(
    path: Path,
    config: TrainConfig,
    nets: Networks,
    dataset: Dataset,
    progress: Progress,
    stopped_by: str,
    device: torch.device,
    world_size: int,
    final: bool,
) -> Path:
    """Evaluate `nets` (see the module's docstring for how many samples) and write them to `path`, atomically."""
    n_fake = config.eval.reference_samples if final else SNAPSHOT_SAMPLES
    heldout = dataset.heldout if final else dataset.heldout[:SNAPSHOT_SAMPLES]
    labels = dataset.heldout_labels if config.model.conditional else None
    if labels is not None and not final:
        labels = labels[:SNAPSHOT_SAMPLES]
    scores, metrics = evaluate_networks(
        config, nets.served, nets.critic, heldout, device, n_fake, final=final, heldout_labels=labels
    )
    summary = run_summary(config, dataset, progress, stopped_by, metrics, device, world_size)
    classes = dataset.classes if config.model.conditional else None
    metadata = make_metadata(
        config.model.generator,
        config.model.critic,
        scores.reference(),
        summary,
        classes,
        scores.class_references(classes),
    )
    return save_checkpoint(path, nets.served, nets.critic, metadata)
