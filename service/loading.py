"""Load every checkpoint in the models folder, warm it up and start its engine; bad files are logged and skipped."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path

import torch

from models import CheckpointError, load_checkpoint
from service.devices import dtype_name
from service.engine.worker import BatchEngine, EngineLimits, Op
from service.metrics import ServiceMetrics
from service.model_runner import ModelRunner, warm_up_sizes
from service.registry import ServedModel
from service.settings import ServiceSettings

log = logging.getLogger(__name__)


def checkpoint_paths(models_dir: Path) -> list[Path]:
    """`*.safetensors` files in the folder, sorted; hidden files (temporary writes) are ignored."""
    return sorted(p for p in models_dir.glob("*.safetensors") if p.is_file() and not p.name.startswith("."))


def load_one(
    path: Path,
    settings: ServiceSettings,
    device: torch.device,
    dtype: torch.dtype,
    metrics: ServiceMetrics,
    codec_pool: Executor,
) -> ServedModel:
    """Load, move, warm up and start one model. Raises CheckpointError for a bad file."""
    checkpoint = load_checkpoint(path, device="cpu")
    runner = ModelRunner(checkpoint, device, dtype)
    if settings.warmup:
        runner.warm_up(warm_up_sizes(settings.max_batch_size))
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
    )


def load_all(
    settings: ServiceSettings,
    device: torch.device,
    dtype: torch.dtype,
    metrics: ServiceMetrics,
    codec_pool: Executor,
    cancel: threading.Event,
) -> list[ServedModel]:
    """Every servable checkpoint in `settings.models_dir`; stops early (returning what it has) when `cancel` is set."""
    served: list[ServedModel] = []
    paths = checkpoint_paths(settings.models_dir)
    if not paths:
        log.warning("no *.safetensors checkpoints in %s; nothing to serve", settings.models_dir)
    for path in paths:
        if cancel.is_set():
            break
        try:
            model = load_one(path, settings, device, dtype, metrics, codec_pool)
        except CheckpointError as exc:
            log.error("skipping %s: %s", path.name, exc.reason)
            continue
        except Exception as exc:  # a checkpoint that loads but cannot run here (e.g. out of memory)
            log.error(
                "skipping %s: it loaded but failed to run on %s: %s: %s", path.name, device, type(exc).__name__, exc
            )
            continue
        served.append(model)
        log.info(
            "serving %s (version %s, %s, z_dim %d) on %s/%s",
            model.name,
            model.version,
            model.kind,
            model.z_dim,
            model.device,
            model.dtype,
        )
    return served
