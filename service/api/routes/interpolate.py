"""POST /v1/interpolate: key points -> a slerp/lerp path of latents (and, for class-conditional models, a lerp of
the keyframes' classes) -> frames (batched) -> PNGs or one animation."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable

import numpy as np
import torch
from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api.disconnect import until_disconnected
from service.api.error_responses import error_responses
from service.api.json_responses import dumps, raw_json_response
from service.api.request_state import runtime_of
from service.api.schemas import InterpolateRequest, InterpolateResponse
from service.api.service_route import ServiceRoute
from service.catalog.registry import ServedModel
from service.codecs.animation import animate, as_animation_format
from service.codecs.images import MEDIA_TYPES
from service.codecs.png import encode_png_batch
from service.engine.batch_engine import Deferred, Items, Op
from service.errors import InvalidRequestError, LimitExceededError
from service.inputs.labels import check_unconditional, class_index, one_hot, require_labels
from service.inputs.latent_walk import frame_count, schedule, walk, walk_labels
from service.inputs.seeds import latents

router = APIRouter(tags=["generate"], route_class=ServiceRoute)

_RAW_CONTENT = {"schema": {"type": "string", "format": "binary"}}


def key_latents(body: InterpolateRequest, z_dim: int) -> torch.Tensor:
    """[K, z_dim]: seeded points drawn like /v1/sample draws them, given latents taken as they are."""
    seeded = [p.seed for p in body.points if p.seed is not None]
    drawn = iter(latents(seeded, z_dim, body.truncation)) if seeded else iter(())
    keys = torch.empty(len(body.points), z_dim)  # [K, z_dim]
    for i, point in enumerate(body.points):
        keys[i] = torch.tensor(point.latent, dtype=torch.float32) if point.latent is not None else next(drawn)
    return keys


def frame_items(body: InterpolateRequest, z_dim: int, key_labels: list[int] | None, n_classes: int) -> Items:
    """Latents [F, z_dim] (and class weights [F, n_classes] for a conditional model), built on the engine's thread."""
    z = walk(key_latents(body, z_dim), body.steps, body.method).latents
    if key_labels is None:
        return Items(z)
    return Items(z, walk_labels(one_hot(key_labels, n_classes), body.steps))


def keyframe_labels(body: InterpolateRequest, model: ServedModel) -> list[int] | None:
    """The class index of every keyframe (class-conditional models, which need one on each); None otherwise."""
    classes = model.metadata.classes
    if not classes:
        given = [i for i, p in enumerate(body.points) if p.label is not None]
        check_unconditional(model.name, bool(given), f"points.{given[0]}.label" if given else "label")
        return None
    missing = [i for i, p in enumerate(body.points) if p.label is None]
    if missing:
        raise require_labels(model.name, classes, f"give every point a `label` (points.{missing[0]} has none)")
    return [
        class_index(p.label, classes, f"points.{i}.label") for i, p in enumerate(body.points) if p.label is not None
    ]


def _check(body: InterpolateRequest, model: ServedModel, max_frames: int) -> str:
    """Check the request against the model and the limits; return the output format."""
    for i, point in enumerate(body.points):
        if point.latent is not None and len(point.latent) != model.z_dim:
            raise InvalidRequestError(
                f"points[{i}].latent has {len(point.latent)} numbers; this model's z_dim is {model.z_dim}",
                {"field": f"points.{i}.latent", "z_dim": model.z_dim},
            )
    frames = frame_count(len(body.points), body.steps)
    if frames > max_frames:
        raise LimitExceededError(
            f"{len(body.points)} points with {body.steps} steps make {frames} frames; the limit is {max_frames}",
            {"frames": frames, "max": max_frames},
        )
    if model.kind == "points":
        fmt = body.format or "json"
        if fmt != "json":
            raise InvalidRequestError(f"model {model.name!r} generates points: format must be json, not {fmt}")
        return fmt
    fmt = body.format or "png"
    if fmt == "json":
        raise InvalidRequestError("format json is for point models; image frames are png, gif or webp")
    return fmt


def _renderer(fmt: str, model: ServedModel, n_points: int, steps: int, frame_ms: int) -> Callable[[np.ndarray], bytes]:
    head = {"model": model.name, "version": model.version}
    segment_array, t_array = schedule(n_points, steps)
    segments, ts = segment_array.tolist(), t_array.tolist()
    if fmt in ("gif", "webp"):
        animation_format = as_animation_format(fmt)
        return lambda pixels: animate(pixels, animation_format, frame_ms)
    if model.kind == "points":
        return lambda points: dumps(
            {
                **head,
                "frames": [{"segment": s, "t": t, "point": p} for s, t, p in zip(segments, ts, points, strict=True)],
            }
        )

    def render_frames(pixels: np.ndarray) -> bytes:  # [F, H, W, C] uint8
        files = encode_png_batch(pixels)
        frames = [
            {"segment": s, "t": t, "data": base64.b64encode(f).decode("ascii")}
            for s, t, f in zip(segments, ts, files, strict=True)
        ]
        return dumps({**head, "frames": frames})

    return render_frames


@router.post(
    "/v1/interpolate",
    response_model=InterpolateResponse,
    responses={
        200: {
            "description": "JSON frames by default; one animation (raw bytes) for format gif or webp",
            "content": {"image/gif": _RAW_CONTENT, "image/webp": _RAW_CONTENT},
        },
        **error_responses(400, 401, 404, 408, 413, 422, 503, 504),
    },
    summary="Walk the latent space through two or more points",
)
async def interpolate(body: InterpolateRequest, request: Request) -> Response:
    runtime = runtime_of(request)
    with runtime.registry.lease(body.model) as model:
        fmt = _check(body, model, runtime.settings.max_frames)
        key_labels = keyframe_labels(body, model)
        n_frames = frame_count(len(body.points), body.steps)
        render = _renderer(fmt, model, len(body.points), body.steps, body.frame_ms)
        build = functools.partial(frame_items, body, model.z_dim, key_labels, model.metadata.n_classes)
        inputs = Deferred(n_frames, build)
        payload = await model.engine.submit(Op.GENERATE, inputs, render, until_disconnected(request.receive))
    if fmt in ("gif", "webp"):
        return Response(payload, media_type=MEDIA_TYPES[fmt], headers={"X-Model-Version": model.version})
    return raw_json_response(payload)
