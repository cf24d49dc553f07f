"""What the lifespan builds and every request reads: settings, metrics, the model registry, the codec threads,
the keys and the drain state."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from service.catalog.registry import ModelRegistry
from service.metrics import ServiceMetrics
from service.process.drain import Drain
from service.settings import ServiceSettings


@dataclass(frozen=True)
class ServiceRuntime:
    settings: ServiceSettings
    metrics: ServiceMetrics
    registry: ModelRegistry
    codec_pool: ThreadPoolExecutor
    api_keys: list[bytes]  # encoded once; compared in constant time by service.api.auth
    admin_key: bytes | None
    drain: Drain
