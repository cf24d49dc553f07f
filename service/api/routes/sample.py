"""POST /v1/sample: decode the request -> seeds, latents and labels -> generate (batched) -> encode off the event
loop."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api.disconnect import until_disconnected
from service.api.error_responses import error_responses
from service.api.json_responses import dumps, raw_json_response
from service.api.negotiation import format_from_accept, wants_raw
from service.api.request_state import header, runtime_of
from service.api.schemas import SampleRequest, SampleResponse
from service.api.service_route import ServiceRoute
from service.catalog.registry import ServedModel
from service.codecs.images import MEDIA_TYPES, as_image_format, encode_images, grid
from service.codecs.npy import encode_npy_batch
from service.codecs.png import encode_png
from service.engine.batch_engine import Deferred, Items, Op
from service.errors import InvalidRequestError, NotAcceptableError
from service.inputs.labels import one_hot, resolve_labels
from service.inputs.seeds import SeededLatents, resolve_seeds

router = APIRouter(tags=["generate"], route_class=ServiceRoute)

SAMPLE_PATH = "/v1/sample"

Delivery = Literal["json", "raw", "grid"]

_RAW_CONTENT = {"schema": {"type": "string", "format": "binary"}}
_RAW_FORMATS = {fmt: MEDIA_TYPES[fmt] for fmt in ("png", "jpeg", "webp")}


@dataclass(frozen=True)
class SamplePlan:
    seeds: list[int]
    format: str
    delivery: Delivery
    labels: list[int] | None = None  # class index per image (class-conditional models)


def plan_sample(body: SampleRequest, model: ServedModel, max_images: int, accept: str | None) -> SamplePlan:
    """Check the request against the model and the limits, and decide seeds, labels, format and response shape."""
    n = len(body.labels) if body.labels is not None and body.seeds is None and body.n is None else body.n
    seeds = resolve_seeds(body.seed, body.seeds, n, max_images)
    labels = resolve_labels(model.name, model.metadata.classes, body.label, body.labels, len(seeds))
    plan = _plan_delivery(body, model, seeds, accept)
    return SamplePlan(plan.seeds, plan.format, plan.delivery, labels)


def _plan_delivery(body: SampleRequest, model: ServedModel, seeds: list[int], accept: str | None) -> SamplePlan:
    fmt: str
    if model.kind == "points":
        fmt = body.format or "json"
        if fmt not in ("json", "npy"):
            raise InvalidRequestError(
                f"model {model.name!r} generates points: format must be json or npy, not {fmt}", {"field": "format"}
            )
        if body.grid:
            raise InvalidRequestError(f"model {model.name!r} generates points: grid applies to image models only")
        return SamplePlan(seeds, fmt, "json")
    fmt = body.format or format_from_accept(accept, _RAW_FORMATS) or "png"
    if fmt == "json":
        raise InvalidRequestError("format json is for point models; image formats are png, jpeg, webp and npy")
    if body.grid:
        if fmt != "png":
            raise InvalidRequestError("a grid is one PNG: leave format out or set it to png", {"field": "format"})
        if body.return_latents:
            raise InvalidRequestError("a grid is raw PNG bytes and cannot carry latents; drop return_latents")
        return SamplePlan(seeds, fmt, "grid")
    if wants_raw(accept, MEDIA_TYPES[fmt]):
        if len(seeds) != 1:
            raise NotAcceptableError(
                f"Accept: {MEDIA_TYPES[fmt]} returns exactly one image, but {len(seeds)} were asked for; "
                "ask for one, send grid: true, or accept application/json"
            )
        if body.return_latents:
            raise InvalidRequestError("raw image bytes cannot carry latents; accept application/json instead")
        return SamplePlan(seeds, fmt, "raw")
    return SamplePlan(seeds, fmt, "json")


def _items(z: SeededLatents, labels: list[int] | None, n_classes: int) -> Items:
    """The generator's inputs, built on the engine's thread: latents [n, z_dim] and class weights [n, n_classes]."""
    return Items(z.build(), one_hot(labels, n_classes) if labels is not None else None)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _renderer(plan: SamplePlan, model: ServedModel, z: SeededLatents | None) -> Callable[[np.ndarray], bytes]:
    """The function the codec threads apply to the generated batch [n, ...] to make the response body.

    `z`, when latents are to be returned, has been built by the engine before the renderer runs.
    """
    seeds, fmt = plan.seeds, plan.format
    head = {"model": model.name, "version": model.version, "format": fmt}
    classes = model.metadata.classes or []
    names = [classes[y] for y in plan.labels] if plan.labels is not None else None

    def with_latent(item: dict[str, object], i: int) -> dict[str, object]:
        if names is not None:
            item["label"] = names[i]
        if z is not None and z.value is not None:
            item["latent"] = z.value[i].numpy()
        return item

    if plan.delivery == "grid":
        return lambda pixels: encode_png(grid(pixels))
    if plan.delivery == "raw":
        raw_format = as_image_format(fmt)
        return lambda pixels: encode_images(pixels, raw_format)[0]
    if model.kind == "points":

        def render_points(points: np.ndarray) -> bytes:  # [n, out_dim] float32
            if fmt == "npy":
                items = [
                    with_latent({"seed": s, "data": _b64(b)}, i)
                    for i, (s, b) in enumerate(zip(seeds, encode_npy_batch(points), strict=True))
                ]
            else:
                items = [with_latent({"seed": s, "point": points[i]}, i) for i, s in enumerate(seeds)]
            return dumps({**head, "points": items})

        return render_points

    image_format = as_image_format(fmt)

    def render_images(pixels: np.ndarray) -> bytes:  # [n, H, W, C] uint8
        files = encode_images(pixels, image_format)
        items = [
            with_latent({"seed": s, "data": _b64(f)}, i) for i, (s, f) in enumerate(zip(seeds, files, strict=True))
        ]
        return dumps({**head, "images": items})

    return render_images


@router.post(
    SAMPLE_PATH,
    response_model=SampleResponse,
    responses={
        200: {
            "description": "JSON by default; raw image bytes with `Accept: image/png` (one image) or `grid: true`",
            "content": {"image/png": _RAW_CONTENT, "image/jpeg": _RAW_CONTENT, "image/webp": _RAW_CONTENT},
            "headers": {
                "X-Seeds": {"description": "comma-separated seeds (raw responses)", "schema": {"type": "string"}},
                "X-Labels": {
                    "description": "comma-separated class indices (raw responses of class-conditional models)",
                    "schema": {"type": "string"},
                },
            },
        },
        **error_responses(400, 401, 404, 406, 408, 413, 422, 503, 504),
    },
    summary="Generate images (or points) from seeds (and labels, for class-conditional models)",
)
async def sample(body: SampleRequest, request: Request) -> Response:
    runtime = runtime_of(request)
    with runtime.registry.lease(body.model) as model:
        plan = plan_sample(body, model, runtime.settings.max_images_per_sample, header(request, b"accept"))
        z = SeededLatents(plan.seeds, model.z_dim, body.truncation)
        render = _renderer(plan, model, z if body.return_latents else None)
        inputs = Deferred(len(plan.seeds), functools.partial(_items, z, plan.labels, model.metadata.n_classes))
        payload = await model.engine.submit(Op.GENERATE, inputs, render, until_disconnected(request.receive))
    if plan.delivery == "json":
        return raw_json_response(payload)
    headers = {"X-Seeds": ",".join(map(str, plan.seeds)), "X-Model-Version": model.version}
    if plan.labels is not None:
        headers["X-Labels"] = ",".join(map(str, plan.labels))
    return Response(payload, media_type=MEDIA_TYPES[plan.format], headers=headers)
