"""GET /v1/models and /v1/models/{name}."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from models import PointGeneratorConfig
from service.api.error_responses import error_responses
from service.api.json_responses import json_response
from service.api.request_state import runtime_of
from service.api.schemas import ModelInfo, ModelList
from service.api.service_route import ServiceRoute
from service.catalog.registry import ServedModel

router = APIRouter(tags=["models"], route_class=ServiceRoute)


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
        data_dim=meta.generator.out_dim if isinstance(meta.generator, PointGeneratorConfig) else None,
        conditional=meta.n_classes > 0,
        classes=list(meta.classes) if meta.classes else None,
        device=model.device,
        dtype=model.dtype,
        loaded_at=model.loaded_at,
        training=meta.training,
    )


@router.get("/v1/models", response_model=ModelList, responses=error_responses(401, 503), summary="List the models")
async def list_models(request: Request) -> Response:
    registry = runtime_of(request).registry
    registry.check_serving()
    listing = ModelList(models=[model_info(m) for m in registry.all()], default=registry.default_name)
    return json_response(listing.model_dump(mode="json"))


@router.get(
    "/v1/models/{name}", response_model=ModelInfo, responses=error_responses(401, 404, 503), summary="One model"
)
async def get_model(name: str, request: Request) -> Response:
    return json_response(model_info(runtime_of(request).registry.get(name)).model_dump(mode="json"))
