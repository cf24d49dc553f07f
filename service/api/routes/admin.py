"""POST /v1/admin/reload: rescan the models folder now and swap in every new or changed checkpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from service.api.dependencies import get_reloader
from service.api.error_responses import error_responses
from service.api.json_responses import json_response
from service.api.schemas import RefusedCheckpoint, ReloadedModel, ReloadResponse
from service.catalog.folder_sync import ModelReloader

router = APIRouter(tags=["admin"])


@router.post(
    "/v1/admin/reload",
    response_model=ReloadResponse,
    responses=error_responses(400, 401, 403, 408, 413, 503),
    summary="Load new or changed checkpoints from the models folder now (admin key)",
)
async def reload_models(reloader: Annotated[ModelReloader, Depends(get_reloader)]) -> Response:
    report = await reloader.scan(settle=False)
    body = ReloadResponse(
        loaded=[ReloadedModel(name=m.name, version=m.version) for m in report.loaded],
        unchanged=report.unchanged,
        removed=report.removed,
        failed=[RefusedCheckpoint(name=name, reason=reason) for name, reason in report.failed],
    )
    return json_response(body.model_dump())
