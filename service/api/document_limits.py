"""The server's request limits written into its OpenAPI document, so that what the document allows a client to
send is what this server accepts: the limits are settings, so the document is per app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models import SEED_MAX


@dataclass(frozen=True)
class RequestLimits:
    max_images_per_sample: int
    max_frames: int
    max_images_per_score: int


def _schema(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or the component it refers to."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


def _body(spec: dict[str, Any], path: str, media: str) -> dict[str, Any]:
    return _schema(spec, spec["paths"][path]["post"]["requestBody"]["content"][media]["schema"])


def _value_schema(model: dict[str, Any], field: str) -> dict[str, Any]:
    """The non-null branch of an optional field (`anyOf: [X, null]`), or the field's own schema."""
    prop: dict[str, Any] = model["properties"][field]
    for branch in prop.get("anyOf", []):
        if branch.get("type") != "null":
            value: dict[str, Any] = branch
            return value
    return prop


def document_limits(spec: dict[str, Any], limits: RequestLimits) -> dict[str, Any]:
    """`spec` with the largest seed exactly, the most images per sample request (`n`, `seeds`, `labels`), the most
    frames per interpolation (each point and each step adds at least one frame), and the most images or points per
    score request (and their labels) stated as `maximum` and `maxItems`. What no JSON Schema can state, the frame
    count (K-1)(steps-1)+1 of K points, stays a 422 `limit_exceeded` the document describes in words."""
    sample = _body(spec, "/v1/sample", "application/json")
    # The generated document writes bounds as floats, and 2**63 - 1 as a float is 2**63: one above the largest seed.
    for seed in (_value_schema(sample, "seed"), _value_schema(sample, "seeds")["items"]):
        seed["maximum"] = SEED_MAX
    _value_schema(sample, "n")["maximum"] = limits.max_images_per_sample
    _value_schema(sample, "seeds")["maxItems"] = limits.max_images_per_sample
    _value_schema(sample, "labels")["maxItems"] = limits.max_images_per_sample
    interpolate = _body(spec, "/v1/interpolate", "application/json")
    _value_schema(interpolate, "points")["maxItems"] = limits.max_frames
    _value_schema(interpolate, "steps")["maximum"] = limits.max_frames
    point = _schema(spec, _value_schema(interpolate, "points")["items"])
    _value_schema(point, "seed")["maximum"] = SEED_MAX
    interpolate["description"] = (
        f"K points at `steps` frames per segment make (K-1)*(steps-1)+1 frames; more than {limits.max_frames} "
        "is refused (422 limit_exceeded)."
    )
    score = _body(spec, "/v1/score", "application/json")
    _value_schema(score, "images")["maxItems"] = limits.max_images_per_score
    _value_schema(score, "points")["maxItems"] = limits.max_images_per_score
    _value_schema(score, "labels")["maxItems"] = limits.max_images_per_score
    form = _body(spec, "/v1/score", "multipart/form-data")
    _value_schema(form, "file")["maxItems"] = limits.max_images_per_score
    _value_schema(form, "label")["maxItems"] = limits.max_images_per_score
    return spec
