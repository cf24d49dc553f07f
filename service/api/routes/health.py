"""Liveness, readiness and the Prometheus exposition: open even when API keys are configured."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api.json_responses import json_response
from service.api.request_state import runtime_of
from service.api.schemas import HealthResponse, ReadyResponse
from service.api.service_route import ServiceRoute
from service.catalog.registry import Readiness
from service.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"], route_class=ServiceRoute)


@router.get("/healthz", response_model=HealthResponse, summary="Liveness: 200 while the process runs")
async def healthz() -> Response:
    return json_response(HealthResponse().model_dump())


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "loading, draining, or no model to serve"}},
    summary="Readiness: 200 once every model is loaded and warmed up (in every worker process)",
)
async def readyz(request: Request) -> Response:
    runtime = runtime_of(request)
    registry = runtime.registry
    state = Readiness.DRAINING if runtime.drain.draining else registry.state
    if state is Readiness.READY and runtime.worker is not None and not runtime.worker.all_ready():
        state = Readiness.LOADING  # this worker is ready, another is still loading (or being replaced)
    body = ReadyResponse(status=state.value, models=[m.name for m in registry.all()]).model_dump()
    if state is Readiness.READY:
        return json_response(body)
    return json_response(body, status_code=503, headers={"Retry-After": str(runtime.settings.retry_after_s)})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
    summary="Prometheus metrics",
)
async def metrics(request: Request) -> Response:
    return Response(runtime_of(request).metrics.render(), media_type=CONTENT_TYPE)
