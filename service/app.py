"""`create_app(settings)`: the FastAPI application, its middleware, routes and lifespan.

The lifespan owns everything stateful. On start-up it resolves the device, then loads and warms up the models
in a background thread, so `/healthz` answers at once and `/readyz` turns 200 when every model is serving.
On shutdown it marks the server as draining, stops each engine (finishing the batch in flight) and the codec
threads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import torch
from fastapi import Depends, FastAPI

from service.api.auth import require_api_key
from service.api.body_limit import BodyLimitMiddleware
from service.api.errors import install_error_handlers
from service.api.request_metrics import RequestMetricsMiddleware
from service.api.routes import health, interpolate, models, sample, score
from service.devices import dtype_name, intra_op_threads, resolve
from service.loading import load_all
from service.metrics import ServiceMetrics
from service.registry import ModelRegistry, ServedModel
from service.runtime import LifespanState, ServiceRuntime
from service.settings import ServiceSettings

log = logging.getLogger(__name__)

API_VERSION = "1"


def create_app(settings: ServiceSettings) -> FastAPI:
    """A new application with its own metrics registry; nothing is loaded until its lifespan starts."""
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[LifespanState]:
        device, dtype = resolve(settings)  # a device this machine lacks stops start-up with a clear message
        threads = intra_op_threads(settings.torch_threads, device)
        if threads is not None:
            torch.set_num_threads(threads)
        runtime = ServiceRuntime(
            settings=settings,
            metrics=metrics,
            registry=ModelRegistry(settings.default_model),
            codec_pool=ThreadPoolExecutor(settings.codec_threads, thread_name_prefix="wgan-codec"),
            api_keys=[key.get_secret_value().encode() for key in settings.api_keys],
        )
        cancel = threading.Event()
        loading = asyncio.create_task(_load(runtime, device, dtype, cancel))
        try:
            yield {"runtime": runtime}
        finally:
            cancel.set()
            runtime.registry.start_draining()
            served = await asyncio.shield(loading)  # every engine it started, published or not
            await asyncio.to_thread(_stop_engines, served)
            runtime.codec_pool.shutdown(wait=True, cancel_futures=True)
            log.info("stopped")

    app = FastAPI(
        title="WGAN serving API",
        version=API_VERSION,
        description="Batched sampling, latent interpolation and critic scoring for trained Wasserstein GANs.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    keyed = [Depends(require_api_key)]
    for module in (models, sample, interpolate, score):
        app.include_router(module.router, dependencies=keyed)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)  # outermost: sees every status, 413s included
    return app


async def _load(
    runtime: ServiceRuntime, device: torch.device, dtype: torch.dtype, cancel: threading.Event
) -> list[ServedModel]:
    settings = runtime.settings
    log.info("loading models from %s on %s/%s", settings.models_dir, device, dtype_name(dtype))
    try:
        served = await asyncio.to_thread(load_all, settings, device, dtype, runtime.metrics, runtime.codec_pool, cancel)
    except Exception:
        log.exception("loading models failed")
        served = []
    for m in served:
        runtime.metrics.model_info.labels(m.name, m.version, m.device, m.dtype).set(1)
    warning = runtime.registry.publish(served)
    if warning:
        log.warning(warning)
    log.info("ready: %d model(s): %s", len(served), ", ".join(m.name for m in served) or "none")
    return served


def _stop_engines(served: list[ServedModel]) -> None:
    for model in served:
        model.engine.stop()
