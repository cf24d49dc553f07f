"""Request and response bodies of HTTP API v1. Requests refuse unknown fields and coerce nothing, except that a
whole number written as a float (`4897.0`) is an integer: JSON has one number type, and JSON Schema's `integer`
allows it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from models import MAX_POINT_DIM, MAX_Z_DIM, SEED_MAX, SEED_MIN


def _whole_float_as_int(value: Any) -> Any:
    """4897.0 -> 4897; everything else unchanged, for strict integer validation to accept or refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The float step comes after the bounds, so the bounds stay in the integer's schema (minimum/maximum).
_WHOLE = BeforeValidator(_whole_float_as_int)
Integer = Annotated[int, _WHOLE]
Seed = Annotated[int, Field(ge=SEED_MIN, le=SEED_MAX), _WHOLE]
Count = Annotated[int, Field(ge=1), _WHOLE]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
# A class-conditional model's label: a class index or a class name (GET /v1/models lists the classes in order). Which
# indices and names exist depends on the model: anything else is refused by the route, naming the known labels.
Label = Annotated[
    int | str,
    _WHOLE,
    Field(description="a class index (0..n_classes-1) or a class name, as GET /v1/models lists them"),
]
# Below 0.05 nearly every latent component has to be redrawn many times over: refused as a cost, not a rule.
Truncation = Annotated[float, Field(ge=0.05, le=100.0, allow_inf_nan=False)]

SampleFormat = Literal["png", "jpeg", "webp", "npy", "json"]
InterpolateFormat = Literal["png", "gif", "webp", "json"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _given(field: str, json_type: str) -> dict[str, Any]:
    """A JSON Schema that holds when `field` is present and not null (a null field counts as absent here)."""
    return {"required": [field], "properties": {field: {"type": json_type}}}


def _all_given(*fields: tuple[str, str]) -> dict[str, Any]:
    return {"allOf": [_given(name, json_type) for name, json_type in fields]}


def _exactly_one(*fields: tuple[str, str]) -> dict[str, Any]:
    """`oneOf` the fields being given: the document states the rule a model validator enforces."""
    return {"oneOf": [_given(name, json_type) for name, json_type in fields]}


# ---- errors ---------------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable snake_case reason", examples=["model_not_found"])
    message: str = Field(description="what went wrong and what to do about it")
    details: Any = Field(None, description="structured context, e.g. the invalid fields")


class ErrorResponse(BaseModel):
    """The body of every 4xx/5xx response."""

    error: ErrorDetail


# ---- health and models ----------------------------------------------------------------------------------------


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready", "loading", "draining", "no_models"]
    models: list[str] = Field(default_factory=list)


class ModelInfo(BaseModel):
    name: str
    version: str = Field(description="first 12 hex digits of the checkpoint file's sha256")
    kind: Literal["image", "points"]
    z_dim: int
    channels: int | None = Field(None, description="image models only")
    height: int | None = Field(None, description="image models only")
    width: int | None = Field(None, description="image models only")
    data_dim: int | None = Field(None, description="point models only: coordinates per point")
    conditional: bool = Field(False, description="class-conditional: sample, interpolate and score take labels")
    classes: list[str] | None = Field(
        None, description="class-conditional models: the class names, in label order (label i is classes[i])"
    )
    device: str
    dtype: str
    loaded_at: datetime
    training: dict[str, Any] = Field(description="the training summary stored in the checkpoint")


class ModelList(BaseModel):
    models: list[ModelInfo]
    default: str | None


# ---- sample ---------------------------------------------------------------------------------------------------


class SampleRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "anyOf": [
                    _all_given(("seeds", "array"), ("seed", "integer")),
                    _all_given(("seeds", "array"), ("n", "integer")),
                    {
                        "required": ["label", "labels"],
                        "properties": {"label": {"type": ["integer", "string"]}, "labels": {"type": "array"}},
                    },
                    # A grid is one PNG: no other format (json is for point models, which have no grid), and
                    # no latents.
                    {
                        "required": ["grid", "format"],
                        "properties": {"grid": {"const": True}, "format": {"enum": ["jpeg", "webp", "npy", "json"]}},
                    },
                    {
                        "required": ["grid", "return_latents"],
                        "properties": {"grid": {"const": True}, "return_latents": {"const": True}},
                    },
                ]
            }
        }
    )

    model: str | None = Field(None, description="model name; absent: the default model")
    n: Count | None = Field(None, description="number of images (default 1); not with `seeds`")
    seed: Seed | None = Field(None, description="image i uses seed + i; absent: the server draws one")
    seeds: list[Seed] | None = Field(None, min_length=1, description="one seed per image; not with `seed` or `n`")
    truncation: Truncation | None = Field(None, description="redraw latent components with |z_i| above this")
    format: SampleFormat | None = Field(
        None, description="png (default for image models), jpeg, webp, npy; json (default) or npy for point models"
    )
    return_latents: bool = False
    grid: bool = Field(
        False, description="return one PNG tiling all images instead of JSON (image models; format png, no latents)"
    )
    label: Label | None = Field(
        None,
        description="class-conditional models: the class of every image (an index or a name); not with `labels`",
    )
    labels: list[Label] | None = Field(
        None,
        min_length=1,
        description="class-conditional models: one class per image (as many as `seeds`, or `n`); with neither "
        "`seeds` nor `n`, one image per label, seeds counting up from `seed`",
    )

    @model_validator(mode="after")
    def _exclusive_seeds(self) -> SampleRequest:
        if self.seeds is not None and (self.seed is not None or self.n is not None):
            raise ValueError("give either `seeds` or `seed`/`n`, not both")
        if self.label is not None and self.labels is not None:
            raise ValueError("give either `label` (every image) or `labels` (one per image), not both")
        return self


class SampledImage(BaseModel):
    seed: int
    label: str | None = Field(None, description="class-conditional models: the image's class name")
    data: str = Field(description="base64 of the encoded image (npy: the uint8 [H, W, C] array)")
    latent: list[float] | None = None


class SampledPoint(BaseModel):
    seed: int
    point: list[float] | None = Field(None, description="format json: the coordinates")
    data: str | None = Field(None, description="format npy: base64 of a float32 [data_dim] array")
    latent: list[float] | None = None


class SampleResponse(BaseModel):
    model: str
    version: str
    format: str
    images: list[SampledImage] | None = Field(None, description="image models")
    points: list[SampledPoint] | None = Field(None, description="point models")


# ---- interpolate ----------------------------------------------------------------------------------------------


class InterpolationPoint(_Request):
    model_config = ConfigDict(json_schema_extra=_exactly_one(("seed", "integer"), ("latent", "array")))

    seed: Seed | None = None
    latent: list[FiniteFloat] | None = Field(
        None, min_length=1, max_length=MAX_Z_DIM, description="exactly z_dim finite numbers"
    )
    label: Label | None = Field(
        None,
        description="class-conditional models (required there): the keyframe's class; between two keyframes the "
        "class embedding is interpolated linearly, so a walk can move from one class to another",
    )

    @model_validator(mode="after")
    def _one_of(self) -> InterpolationPoint:
        if (self.seed is None) == (self.latent is None):
            raise ValueError("each point needs exactly one of `seed` or `latent`")
        return self


class InterpolateRequest(_Request):
    model: str | None = None
    points: list[InterpolationPoint] = Field(
        min_length=2, description="2..K key points, walked in order", examples=[[{"seed": 1}, {"seed": 2}]]
    )
    steps: Integer = Field(8, ge=2, description="frames per segment counting both ends")
    method: Literal["slerp", "lerp"] = "slerp"
    truncation: Truncation | None = None
    format: InterpolateFormat | None = Field(
        None, description="png (default: JSON frames), gif or webp (one animation as raw bytes); json for point models"
    )
    frame_ms: Integer = Field(100, ge=10, le=10_000, description="animation: milliseconds per frame")


class Frame(BaseModel):
    segment: int = Field(description="index of the segment between points[segment] and points[segment + 1]")
    t: float = Field(description="position within the segment, 0..1")
    data: str | None = Field(None, description="image models: base64 PNG")
    point: list[float] | None = Field(None, description="point models: the coordinates")


class InterpolateResponse(BaseModel):
    model: str
    version: str
    frames: list[Frame]


# ---- score ----------------------------------------------------------------------------------------------------


class ScoreRequest(_Request):
    model_config = ConfigDict(json_schema_extra=_exactly_one(("images", "array"), ("points", "array")))

    model: str | None = None
    images: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, min_length=1, description="base64 PNG, JPEG or WebP (image models)"
    )
    points: list[Annotated[list[FiniteFloat], Field(min_length=1, max_length=MAX_POINT_DIM)]] | None = Field(
        None, min_length=1, description="coordinates (point models): data_dim numbers each"
    )
    resize: Literal["error", "fit"] = Field("error", description="fit: resize images to the model's size")
    labels: list[Label | None] | None = Field(
        None,
        min_length=1,
        description="class-conditional models: one label per image (null: the class the critic rates highest); "
        "absent: the class the critic rates highest for every image",
    )

    @model_validator(mode="after")
    def _one_of(self) -> ScoreRequest:
        if (self.images is None) == (self.points is None):
            raise ValueError("send exactly one of `images` or `points`")
        return self


class Score(BaseModel):
    critic: float = Field(description="raw critic score (higher: judged more real)")
    percentile: float = Field(description="where the score falls among the critic's scores on real data, 0..100")
    label: str | None = Field(
        None,
        description="class-conditional models: the class the image was scored against (the one sent, or else the "
        "one the critic rates highest)",
    )
    reference: Literal["class", "overall"] | None = Field(
        None,
        description="class-conditional models: `class` when the percentile places the score among that class's "
        "held-out images, `overall` when the checkpoint has no reference for the class (all classes together)",
    )


class ScoreResponse(BaseModel):
    model: str
    version: str
    scores: list[Score]


# ---- admin ----------------------------------------------------------------------------------------------------


class ReloadedModel(BaseModel):
    name: str
    version: str


class RefusedCheckpoint(BaseModel):
    name: str
    reason: str = Field(description="why the file was refused; the version already serving (if any) is kept")


class ReloadResponse(BaseModel):
    loaded: list[ReloadedModel] = Field(description="new or changed checkpoints now serving")
    unchanged: list[str]
    removed: list[str] = Field(description="models whose file is gone; no longer served")
    failed: list[RefusedCheckpoint]
    workers: int = Field(description="server processes that rescanned the folder (the lists merge their reports)")
    workers_total: int = Field(description="server processes serving; more than `workers` when one did not answer")
