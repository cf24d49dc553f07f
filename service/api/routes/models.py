"""GET /v1/models and /v1/models/{name}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from service.api.dependencies import get_runtime
from service.api.error_responses import error_responses
from service.api.json_responses import json_response
from service.api.schemas import ModelInfo, ModelList
from service.catalog.registry import ServedModel
from service.runtime import ServiceRuntime

router = APIRouter(tags=["models"])

Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]


def model_info(model: ServedModel) -> ModelInfo:
    meta = model.metadata
    return ModelInfo(
        name=model.name,
        version=model.version,
        kind=meta.kind,
        z_dim=meta.z_dim,
        channels=meta.channels,
        height=meta.height,
        width=meta.width,
        data_dim=None if meta.kind == "image" else int(meta.generator.out_dim),  # type: ignore[union-attr]
        device=model.device,
        dtype=model.dtype,
        loaded_at=model.loaded_at,
        training=meta.training,
    )


@router.get("/v1/models", response_model=ModelList, responses=error_responses(401, 503), summary="List the models")
async def list_models(runtime: Runtime) -> Response:
    registry = runtime.registry
    registry.check_serving()
    listing = ModelList(models=[model_info(m) for m in registry.all()], default=registry.default_name)
    return json_response(listing.model_dump(mode="json"))


@router.get(
    "/v1/models/{name}", response_model=ModelInfo, responses=error_responses(401, 404, 503), summary="One model"
)
async def get_model(name: str, runtime: Runtime) -> Response:
    return json_response(model_info(runtime.registry.get(name)).model_dump(mode="json"))
