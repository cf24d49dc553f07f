"""Architecture configs: everything needed to rebuild a generator or critic.

These are stored verbatim in a checkpoint's metadata, so weights and architecture cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

CriticNorm = Literal["none", "layer", "instance", "spectral", "batch"]
GeneratorNorm = Literal["batch", "none"]

SUPPORTED_RESOLUTIONS = (8, 16, 32, 64, 128)


def _check_resolution(value: int) -> int:
    if value not in SUPPORTED_RESOLUTIONS:
        raise ValueError(f"resolution must be one of {SUPPORTED_RESOLUTIONS}, got {value}")
    return value


Resolution = Annotated[int, AfterValidator(_check_resolution)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageGeneratorConfig(_Frozen):
    """DCGAN-style generator: a 4x4 seed, then ConvTranspose2d doublings up to `resolution`, tanh output."""

    kind: Literal["image"] = "image"
    z_dim: int = Field(128, ge=1, le=4096)
    channels: Literal[1, 3] = 1
    resolution: Resolution = 32
    width: int = Field(64, ge=4, le=1024, description="channels of the last hidden block; earlier blocks double it")
    max_width_mult: int = Field(8, ge=1, le=32)
    norm: GeneratorNorm = "batch"


class ImageCriticConfig(_Frozen):
    """DCGAN-style critic: strided Conv2d halvings down to 4x4, LeakyReLU(0.2), a linear score."""

    kind: Literal["image"] = "image"
    channels: Literal[1, 3] = 1
    resolution: Resolution = 32
    width: int = Field(64, ge=4, le=1024, description="channels of the first block; later blocks double it")
    max_width_mult: int = Field(8, ge=1, le=32)
    norm: CriticNorm = "layer"


class PointGeneratorConfig(_Frozen):
    """MLP generator for 2-D point data."""

    kind: Literal["points"] = "points"
    z_dim: int = Field(2, ge=1, le=4096)
    hidden: int = Field(512, ge=1, le=8192)
    depth: int = Field(3, ge=1, le=16)
    out_dim: int = Field(2, ge=1, le=64)


class PointCriticConfig(_Frozen):
    """MLP critic for 2-D point data."""

    kind: Literal["points"] = "points"
    in_dim: int = Field(2, ge=1, le=64)
    hidden: int = Field(512, ge=1, le=8192)
    depth: int = Field(3, ge=1, le=16)
    norm: Literal["none", "layer", "spectral", "batch"] = "none"


GeneratorConfig = Annotated[ImageGeneratorConfig | PointGeneratorConfig, Field(discriminator="kind")]
CriticConfig = Annotated[ImageCriticConfig | PointCriticConfig, Field(discriminator="kind")]
