"""`create_app(settings)`: the FastAPI application, its middleware, routes and lifespan.

The lifespan owns everything stateful. On start-up it resolves the device, then loads and warms up the models
in a background task, so `/healthz` answers at once and `/readyz` turns 200 when every model is serving; after
that a watcher keeps the served models in step with the models folder (hot reload). On shutdown it marks the
server as draining, stops the watcher, each engine (finishing the batch in flight) and the codec threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from typing import TypedDict

import torch
from fastapi import Depends, FastAPI
from starlette.types import Receive, Scope, Send

from service.api.auth import require_admin_key, require_api_key
from service.api.middleware.body_limit import BodyLimitMiddleware
from service.api.middleware.drain_gate import DrainMiddleware
from service.api.error_responses import install_error_handlers
from service.api.fast_path import SampleFastPath
from service.api.middleware.request_metrics import RequestMetricsMiddleware
from service.api.routes import admin, health, interpolate, models, sample, score
from service.inference.devices import dtype_name, intra_op_threads, resolve
from service.process.drain import Drain
from service.metrics import ServiceMetrics
from service.catalog.registry import ModelRegistry, ServedModel
from service.catalog.folder_sync import ModelReloader
from service.runtime import ServiceRuntime
from service.settings import ServiceSettings

log = logging.getLogger(__name__)

API_VERSION = "1"


class LifespanState(TypedDict):
    """Starlette copies this into every request's `request.state`."""

    runtime: ServiceRuntime
    reloader: ModelReloader


class ServiceApp(FastAPI):
    """The FastAPI app, with the lean path for plain sampling requests (when on) in front of its whole stack.

    In front of FastAPI's own layers, not among the middlewares: at one image per request those layers are a
    visible share of the event loop's time. What the lean path does not answer goes through the full app.
    """

    lean_path: SampleFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.lean_path is not None:
            await self.lean_path(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: ServiceSettings, drain: Drain | None = None) -> ServiceApp:
    """A new application with its own metrics registry; nothing is loaded until its lifespan starts.

    `drain`, when given, is the drain state the process running the app sets on SIGTERM (see `service.cli`).
    """
    metrics = ServiceMetrics()
    drain = drain if drain is not None else Drain()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[LifespanState]:
        device, dtype = resolve(settings)  # a device this machine lacks stops start-up with a clear message
        threads = intra_op_threads(settings.torch_threads, device)
        if threads is not None:
            torch.set_num_threads(threads)
        runtime = ServiceRuntime(
            settings=settings,
            metrics=metrics,
            registry=ModelRegistry(settings.default_model, retire=_retire_in_background),
            codec_pool=ThreadPoolExecutor(settings.codec_threads, thread_name_prefix="wgan-codec"),
            api_keys=[key.get_secret_value().encode() for key in settings.api_keys],
            admin_key=settings.admin_key.get_secret_value().encode() if settings.admin_key is not None else None,
            drain=drain,
        )
        reloader = ModelReloader(runtime, device, dtype)

        async def abandon_queued() -> None:  # the drain timed out: answer every queued request 503 now
            await asyncio.to_thread(_stop_engines, runtime.registry.start_draining())

        drain.on_abandon(abandon_queued)
        loading = asyncio.create_task(_load_then_watch(runtime, reloader, device, dtype))
        try:
            yield {"runtime": runtime, "reloader": reloader}
        finally:
            runtime.registry.start_draining()
            await reloader.close()  # a scan still loading a file finishes that file first
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            served = runtime.registry.start_draining()  # every engine still running, retiring ones included
            await asyncio.to_thread(_stop_engines, served)
            runtime.codec_pool.shutdown(wait=True, cancel_futures=True)
            log.info("stopped")

    app = ServiceApp(
        title="WGAN serving API",
        version=API_VERSION,
        description="Batched sampling, latent interpolation and critic scoring for trained Wasserstein GANs.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    # Without API keys the routes are open, and the OpenAPI document says so (no security requirement).
    keyed = [Depends(require_api_key)] if settings.api_keys else []
    for module in (models, sample, interpolate, score):
        app.include_router(module.router, dependencies=keyed)
    app.include_router(admin.router, dependencies=[Depends(require_admin_key)])
    app.add_middleware(
        BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes, read_timeout_s=settings.request_read_timeout_s
    )
    app.add_middleware(DrainMiddleware, drain=drain, retry_after_s=settings.retry_after_s)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)  # outermost: sees every status, 413s included
    if settings.fast_path:
        app.lean_path = SampleFastPath(
            partial(FastAPI.__call__, app),
            metrics=metrics,
            drain=drain,
            max_body_bytes=settings.max_body_bytes,
            read_timeout_s=settings.request_read_timeout_s,
        )
    return app


async def _load_then_watch(
    runtime: ServiceRuntime, reloader: ModelReloader, device: torch.device, dtype: torch.dtype
) -> None:
    settings = runtime.settings
    log.info("loading models from %s on %s/%s", settings.models_dir, device, dtype_name(dtype))
    try:
        report = await reloader.scan(settle=False)
    except Exception:
        log.exception("loading models failed")
    else:
        if not (report.loaded or report.failed):
            log.warning("no *.safetensors checkpoints in %s; nothing to serve", settings.models_dir)
    warning = runtime.registry.finish_loading()
    if warning:
        log.warning(warning)
    served = runtime.registry.all()
    log.info("ready: %d model(s): %s", len(served), ", ".join(m.name for m in served) or "none")
    if settings.reload_poll_s > 0:
        await reloader.watch(settings.reload_poll_s)


def _retire_in_background(model: ServedModel) -> None:
    """Stop a replaced or removed model's engine off the event loop (its queue is empty: nobody leases it)."""

    def stop() -> None:
        model.engine.stop()
        log.info("retired %s version %s", model.name, model.version)

    threading.Thread(target=stop, name=f"wgan-retire-{model.name}", daemon=True).start()


def _stop_engines(served: list[ServedModel]) -> None:
    for model in served:
        model.engine.stop()
