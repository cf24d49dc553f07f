"""Turn a validated checkpoint into a served model: moved to the device, warmed up, its engine started."""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path

import torch

from models import Checkpoint
from service.catalog.registry import ServedModel
from service.engine.batch_engine import BatchEngine, EngineLimits, Op
from service.inference.devices import dtype_name
from service.inference.runner import ForwardOptions, ModelRunner, warm_up_sizes
from service.metrics import ServiceMetrics
from service.settings import ServiceSettings

log = logging.getLogger(__name__)


def checkpoint_paths(models_dir: Path) -> list[Path]:
    """`*.safetensors` files in the folder, sorted; hidden files (temporary writes) are ignored."""
    return sorted(p for p in models_dir.glob("*.safetensors") if p.is_file() and not p.name.startswith("."))


def serve_checkpoint(
    checkpoint: Checkpoint,
    settings: ServiceSettings,
    device: torch.device,
    dtype: torch.dtype,
    metrics: ServiceMetrics,
    codec_pool: Executor,
) -> ServedModel:
    """Move a loaded checkpoint to the device, warm it up and start its engine."""
    options = ForwardOptions(settings.backend, settings.cuda_graphs, settings.max_batch_size)
    runner = ModelRunner(checkpoint, device, dtype, options)
    if settings.warmup:
        seconds = runner.warm_up(warm_up_sizes(settings.max_batch_size))
        log.info("model %s: warmed up (backend %s) in %.2f s", checkpoint.name, runner.backend, seconds)
    limits = EngineLimits(
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        max_queue_items=settings.max_queue_items,
        max_queue_ms=settings.max_queue_ms,
    )
    engine = BatchEngine(
        checkpoint.name,
        {Op.GENERATE: runner.generate, Op.SCORE: runner.score},
        limits,
        metrics,
        codec_pool,
        settings.codec_threads,
    )
    engine.start()
    return ServedModel(
        name=checkpoint.name,
        version=checkpoint.version,
        metadata=checkpoint.metadata,
        runner=runner,
        engine=engine,
        device=str(device),
        dtype=dtype_name(dtype),
        loaded_at=datetime.now(UTC),
        path=checkpoint.path,
    )
