"""POST /v1/admin/reload: rescan the models folder now and swap in every new or changed checkpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api.error_responses import error_responses
from service.api.json_responses import json_response
from service.api.request_state import reloader_of
from service.api.schemas import RefusedCheckpoint, ReloadedModel, ReloadResponse
from service.api.service_route import ServiceRoute

router = APIRouter(tags=["admin"], route_class=ServiceRoute)


@router.post(
    "/v1/admin/reload",
    response_model=ReloadResponse,
    responses=error_responses(400, 401, 403, 408, 413, 503),
    summary="Load new or changed checkpoints from the models folder now (admin key)",
)
async def reload_models(request: Request) -> Response:
    report = await reloader_of(request).scan(settle=False)
    body = ReloadResponse(
        loaded=[ReloadedModel(name=m.name, version=m.version) for m in report.loaded],
        unchanged=report.unchanged,
        removed=report.removed,
        failed=[RefusedCheckpoint(name=name, reason=reason) for name, reason in report.failed],
    )
    return json_response(body.model_dump())
