"""POST /v1/score: decode uploads (off the event loop) -> critic (batched) -> raw scores and percentiles.

A class-conditional critic scores every image against every class in one pass ([n, n_classes]); the image's label
picks the score, or without one the class the critic rates highest, and the percentile places the score within
that class's reference (the checkpoint's per-class references; the overall one for a checkpoint without them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.datastructures import UploadFile
from starlette.responses import Response

from service.api.disconnect import until_disconnected
from service.api.error_responses import error_responses
from service.api.json_responses import dumps, raw_json_response
from service.api.request_state import header, runtime_of
from service.api.schemas import ScoreRequest, ScoreResponse
from service.api.service_route import ServiceRoute, is_json, json_body, validation_error
from service.catalog.registry import ServedModel
from service.codecs.decode import DecodeTarget, decode_base64_images, decode_images
from service.engine.batch_engine import Op
from service.errors import InvalidRequestError, LimitExceededError, UnsupportedMediaTypeError, clip
from service.inputs.labels import Label, check_unconditional, class_index
from service.runtime import ServiceRuntime
from service.settings import ServiceSettings

router = APIRouter(tags=["score"], route_class=ServiceRoute)

# Exactly the parts the server reads: one or more `file` parts, the two plain fields and `label` fields (one per file,
# in order), nothing else (an unknown field is a 422, too many plain fields a 400).
_MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["file"],
    "additionalProperties": False,
    "properties": {
        "file": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "format": "binary"},
            "description": "PNG, JPEG or WebP",
        },
        "model": {"type": "string"},
        "resize": {"type": "string", "enum": ["error", "fit"], "default": "error"},
        "label": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 1},
            "description": "class-conditional models: one label per file, in order (a class name, or an index "
            "written in decimal); absent: the class the critic rates highest",
        },
    },
}
_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": ScoreRequest.model_json_schema()},
        "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
    },
}


class ScoreFormFields(BaseModel):
    """The non-file fields of a multipart score request."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    resize: Literal["error", "fit"] = "error"


@dataclass(frozen=True)
class _Uploads:
    """A parsed score request: the JSON body, or multipart form fields plus the raw files."""

    request: ScoreRequest | None = None
    fields: ScoreFormFields | None = None
    files: list[bytes] = field(default_factory=list)
    form_labels: list[str] | None = None  # multipart `label` fields

    @property
    def model(self) -> str | None:
        return self.request.model if self.request is not None else self._fields.model

    @property
    def resize(self) -> Literal["error", "fit"]:
        return self.request.resize if self.request is not None else self._fields.resize

    @property
    def _fields(self) -> ScoreFormFields:
        assert self.fields is not None, "a score request is JSON or multipart"
        return self.fields


async def _read_multipart(request: Request, settings: ServiceSettings) -> _Uploads:
    limit = settings.max_images_per_score
    max_fields = 8 + limit  # the plain fields and one label per file
    async with request.form(max_files=limit + 1, max_fields=max_fields, max_part_size=settings.max_body_bytes) as form:
        others = {k: v for k, v in form.multi_items() if k not in ("file", "label")}
        labels = form.getlist("label")
        if any(not isinstance(v, str) for v in labels):
            raise InvalidRequestError("`label` fields are plain text, one per file")
        if any(not isinstance(v, str) for v in others.values()):
            raise InvalidRequestError("only `file` parts may carry files; model and resize are plain fields")
        try:
            fields = ScoreFormFields.model_validate(others)
        except ValidationError as exc:
            raise validation_error(exc) from exc
        parts = form.getlist("file")
        if not parts:
            raise InvalidRequestError("send one or more images as multipart `file` parts")
        if len(parts) > limit:
            raise LimitExceededError(f"{len(parts)} images sent; at most {limit} per request", {"max": limit})
        files: list[bytes] = []
        for part in parts:
            if not isinstance(part, UploadFile):
                raise InvalidRequestError("each `file` part must be a file upload, not a text field")
            files.append(await part.read())
    return _Uploads(fields=fields, files=files, form_labels=[str(v) for v in labels] or None)


async def _read(request: Request, settings: ServiceSettings) -> _Uploads:
    content_type = header(request, b"content-type")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        return await _read_multipart(request, settings)
    if not is_json(content_type):
        raise UnsupportedMediaTypeError(
            f"send application/json or multipart/form-data, not {clip(media)}", {"content_type": clip(media)}
        )
    return _Uploads(request=await json_body(request, ScoreRequest))


def _render(model: ServedModel, labels: list[int | None] | None) -> Callable[[np.ndarray], bytes]:
    """Scores [n] (or [n, n_classes] for a conditional model, with `labels`: a class index or None per image) ->
    the response body."""
    meta = model.metadata
    head = {"model": model.name, "version": model.version}
    if labels is None:
        reference = meta.critic_reference

        def render(scores: np.ndarray) -> bytes:  # [n] float32
            raw = scores.astype(np.float64)
            percentiles = reference.percentile(raw)
            items = [{"critic": c, "percentile": p} for c, p in zip(raw.tolist(), percentiles.tolist(), strict=True)]
            return dumps({**head, "scores": items})

        return render
    classes = meta.classes or []

    def render_classes(scores: np.ndarray) -> bytes:  # [n, n_classes] float32
        raw = scores.astype(np.float64)
        items = []
        for i, asked in enumerate(labels):
            y = int(np.argmax(raw[i])) if asked is None else asked
            reference, own = meta.reference_for(y)
            critic = float(raw[i, y])
            percentile = float(reference.percentile([critic])[0])
            items.append(
                {
                    "critic": critic,
                    "percentile": percentile,
                    "label": classes[y],
                    "reference": "class" if own else "overall",
                }
            )
        return dumps({**head, "scores": items})

    return render_classes


def _count(uploads: _Uploads) -> int:
    body = uploads.request
    if body is None:
        return len(uploads.files)
    return len(body.images if body.images is not None else body.points or [])


def _score_labels(uploads: _Uploads, model: ServedModel, n_images: int) -> list[int | None] | None:
    """The class index each image is scored against (None: the best one) for a conditional model; None for an
    unconditional one, which takes no labels."""
    sent: list[Label | None] | None = uploads.request.labels if uploads.request is not None else None
    from_form = uploads.form_labels is not None
    if from_form:
        sent = list(uploads.form_labels or [])
    classes = model.metadata.classes
    if not classes:
        check_unconditional(model.name, sent is not None, "label" if from_form else "labels")
        return None
    if sent is None:
        return [None] * n_images
    if len(sent) != n_images:
        raise InvalidRequestError(
            f"{len(sent)} labels for {n_images} images: send one label per image (null: the critic's best class)",
            {"field": "label" if from_form else "labels", "images": n_images, "labels": len(sent)},
        )
    field = "label" if from_form else "labels"
    return [
        None if y is None else class_index(y, classes, f"{field}.{i}", digits_are_indices=from_form)
        for i, y in enumerate(sent)
    ]


async def _inputs(uploads: _Uploads, model: ServedModel, runtime: ServiceRuntime) -> torch.Tensor:
    """The critic's batch: [n, H, W, C] uint8 for image models, [n, in_dim] float32 for point models."""
    settings = runtime.settings
    limit = settings.max_images_per_score
    body = uploads.request
    if model.kind == "points":
        if body is None or body.points is None:
            raise InvalidRequestError(f"model {model.name!r} scores points: send JSON with `points`")
        if len(body.points) > limit:
            raise LimitExceededError(f"{len(body.points)} points sent; at most {limit} per request", {"max": limit})
        dim = model.runner.score_item_shape[0]
        for i, point in enumerate(body.points):
            if len(point) != dim:
                raise InvalidRequestError(
                    f"points[{i}] has {len(point)} coordinates; this model's points have {dim}",
                    {"field": f"points.{i}", "expected": dim},
                )
        return torch.tensor(body.points, dtype=torch.float32)  # [n, in_dim]
    if body is not None and body.images is None:
        raise InvalidRequestError(f"model {model.name!r} scores images: send `images` (base64) or `file` uploads")
    height, width, channels = model.runner.score_item_shape
    target = DecodeTarget(height, width, channels, uploads.resize, settings.max_decoded_pixels)
    loop = asyncio.get_running_loop()
    if body is not None:
        assert body.images is not None
        if len(body.images) > limit:
            raise LimitExceededError(f"{len(body.images)} images sent; at most {limit} per request", {"max": limit})
        pixels = await loop.run_in_executor(runtime.codec_pool, decode_base64_images, body.images, target)
    else:
        pixels = await loop.run_in_executor(runtime.codec_pool, decode_images, uploads.files, target)
    return torch.from_numpy(pixels)  # [n, H, W, C]


@router.post(
    "/v1/score",
    response_model=ScoreResponse,
    responses=error_responses(400, 401, 404, 408, 413, 415, 422, 503, 504),
    openapi_extra={"requestBody": _REQUEST_BODY},
    summary="Score images (or points) with the critic",
)
async def score(request: Request) -> Response:
    runtime = runtime_of(request)
    uploads = await _read(request, runtime.settings)
    with runtime.registry.lease(uploads.model) as model:
        labels = _score_labels(uploads, model, _count(uploads))  # checked before any image is decoded
        inputs = await _inputs(uploads, model, runtime)
        render = _render(model, labels)
        payload = await model.engine.submit(Op.SCORE, inputs, render, until_disconnected(request.receive))
    return raw_json_response(payload)
