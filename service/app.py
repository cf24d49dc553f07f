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
from typing import Any, TypedDict

import torch
from fastapi import APIRouter, FastAPI
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.auth import document_keys
from service.api.document_limits import RequestLimits, document_limits
from service.api.error_responses import install_error_handlers
from service.api.middleware.body_limit import BodyLimitMiddleware
from service.api.middleware.drain_gate import DrainMiddleware
from service.api.middleware.request_metrics import RequestMetricsMiddleware
from service.api.routes import admin, health, interpolate, models, playground, sample, score
from service.api.routes.admin import scan_of
from service.api.service_route import ServiceRoute
from service.catalog.folder_sync import ModelReloader
from service.catalog.registry import ModelRegistry, ServedModel
from service.inference.backends import announce_backend
from service.inference.cpu_cores import available_cores, torch_threads
from service.inference.devices import configure_cuda_numerics, dtype_name, resolve
from service.metrics import ServiceMetrics
from service.playground import load_assets
from service.runtime import Drain, ServiceRuntime
from service.settings import ServiceSettings
from service.workers.link import WorkerLink
from service.workers.messages import WorkerScan

log = logging.getLogger(__name__)

API_VERSION = "1"


class LifespanState(TypedDict):
    """Starlette copies this into every request's `request.state`."""

    runtime: ServiceRuntime
    reloader: ModelReloader


class ServiceApp(FastAPI):
    """The FastAPI app with the layers a request passes kept to those the service uses.

    Every request passes: Starlette's last-resort error handler, the service's middlewares (request metrics, the
    drain gate, the body limits), Starlette's exception handlers (the error envelope), the router, `ServiceRoute`.
    FastAPI's own stack adds three more layers that do nothing here: its OpenTelemetry hooks (the service's metrics
    are its own), its body-size limit (the service's `BodyLimitMiddleware` applies one) and an exit stack for files
    of `File` parameters (no route has one: `/v1/score` closes the forms it reads). Routes are added to the app's
    own router, not included as nested routers, which FastAPI matches through a second walk on every request.
    The OpenAPI document states which key each route needs (`service.api.auth.required_key`).
    """

    keyed: bool = False  # whether the server has API keys
    admin: bool = False  # whether it has an admin key (without one the admin routes are off)
    limits: RequestLimits | None = None  # the request limits the document states (None: left unstated)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # what Starlette's own __call__ does, without FastAPI's per-request telemetry checks
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        await self.middleware_stack(scope, receive, send)

    def add_routes(self, router: APIRouter) -> None:
        """Add `router`'s routes ahead of FastAPI's documentation pages, in order: the router tries them in turn."""
        first_docs = next((i for i, r in enumerate(self.router.routes) if not isinstance(r, ServiceRoute)), None)
        at = len(self.router.routes) if first_docs is None else first_docs
        for route in router.routes:
            if not isinstance(route, ServiceRoute):
                raise TypeError(f"{route!r}: every route of the service is a ServiceRoute")
            self.router.routes.insert(at, route)
            at += 1

    def build_middleware_stack(self) -> ASGIApp:
        error_handler = None
        handlers: dict[Any, Any] = {}
        for key, value in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = value
            else:
                handlers[key] = value
        middleware = [
            Middleware(ServerErrorMiddleware, handler=error_handler, debug=self.debug),
            *self.user_middleware,
            Middleware(ExceptionMiddleware, handlers=handlers, debug=self.debug),
        ]
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(middleware):
            app = cls(app, *args, **kwargs)
        return app

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            spec = document_keys(super().openapi(), self.keyed, self.admin)
            self.openapi_schema = spec if self.limits is None else document_limits(spec, self.limits)
        return self.openapi_schema


def create_app(settings: ServiceSettings, drain: Drain | None = None, worker: WorkerLink | None = None) -> ServiceApp:
    """A new application with its own metrics registry; nothing is loaded until its lifespan starts.

    `drain`, when given, is the drain state the process running the app sets on SIGTERM (see `service.cli`).
    `worker`, when given, makes the app one worker process of several (`service.process.supervisor`): metrics
    are every worker's, `/readyz` waits for every worker, and a reload reaches every worker. A worker that
    replaces one that died loads its models before the server accepts connections, so it never answers unready.
    """
    metrics = ServiceMetrics(worker.identity.state.metrics if worker is not None else None)
    drain = drain if drain is not None else Drain()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[LifespanState]:
        device, dtype = resolve(settings)  # a device this machine lacks stops start-up with a clear message
        configure_cuda_numerics(device, dtype)  # IEEE fp32, deterministic cuDNN algorithms
        announce_backend(settings.backend, device)
        threads = torch_threads(settings.torch_threads, device.type, 1, available_cores())
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
            worker=worker,
        )
        reloader = ModelReloader(settings, metrics, runtime.registry, runtime.codec_pool, device, dtype)

        async def abandon_queued() -> None:  # the drain timed out: answer every queued request 503 now
            await asyncio.to_thread(_stop_engines, runtime.registry.start_draining())

        async def rescan() -> WorkerScan:  # the supervisor asks every worker to rescan (a reload broadcast)
            return scan_of(await reloader.scan(settle=False), worker.index if worker is not None else 0)

        drain.on_abandon(abandon_queued)
        loaded = asyncio.Event()
        loading = asyncio.create_task(_load_then_watch(runtime, reloader, device, dtype, loaded))
        if worker is not None:
            await worker.start(rescan)
            if worker.identity.wait_for_models:
                await loaded.wait()
        try:
            yield {"runtime": runtime, "reloader": reloader}
        finally:
            if worker is not None:
                await worker.close()
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
        telemetry={"tracing": False, "metrics": False, "logs": False},  # the service's metrics are its own
    )
    app.keyed = bool(settings.api_keys)  # without API keys the routes are open, and the document says so
    app.admin = settings.admin_key is not None
    app.limits = RequestLimits(settings.max_images_per_sample, settings.max_frames, settings.max_images_per_score)
    install_error_handlers(app)
    for module in (sample, health, models, interpolate, score, admin):  # the busiest route is matched first
        app.add_routes(module.router)
    if settings.playground:  # off: `/` is an unknown path like any other
        app.add_routes(playground.build_router(load_assets()))
    app.add_middleware(
        BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes, read_timeout_s=settings.request_read_timeout_s
    )
    app.add_middleware(DrainMiddleware, drain=drain, retry_after_s=settings.retry_after_s)
    # Outermost: sees every status, 413s included, and names the route of requests whose client left mid-body.
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, routes=app.router.routes)
    return app


async def _load_then_watch(
    runtime: ServiceRuntime,
    reloader: ModelReloader,
    device: torch.device,
    dtype: torch.dtype,
    loaded: asyncio.Event,
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
    if runtime.worker is not None:
        runtime.worker.mark_ready()
    loaded.set()
    if settings.reload_poll_s > 0:
        worker = runtime.worker
        await reloader.watch(settings.reload_poll_s, None if worker is None else worker.rescan_others)


def _retire_in_background(model: ServedModel) -> None:
    """Stop a replaced or removed model's engine off the event loop (its queue is empty: nobody leases it), then
    release what its runner holds on the device."""

    def stop() -> None:
        model.engine.stop()
        model.runner.close()
        log.info("retired %s version %s", model.name, model.version)

    threading.Thread(target=stop, name=f"wgan-retire-{model.name}", daemon=True).start()


def _stop_engines(served: list[ServedModel]) -> None:
    for model in served:
        model.engine.stop()
