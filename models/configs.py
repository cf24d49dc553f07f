"""Architecture configs: everything needed to rebuild a generator or critic.

These are stored verbatim in a checkpoint's metadata, so weights and architecture cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

# The largest latent any generator has, and the most coordinates a point model's points have: the bounds a
# request's latents and points can be checked against before a model is chosen.
MAX_Z_DIM = 4096
MAX_POINT_DIM = 64

CriticNorm = Literal["none", "layer", "instance", "spectral", "batch"]
GeneratorNorm = Literal["batch", "none"]
ImageArch = Literal["dcgan", "resnet"]

SUPPORTED_RESOLUTIONS = (8, 16, 32, 64, 128)


def _check_resolution(value: int) -> int:
    if value not in SUPPORTED_RESOLUTIONS:
        raise ValueError(f"resolution must be one of {SUPPORTED_RESOLUTIONS}, got {value}")
    return value


Resolution = Annotated[int, AfterValidator(_check_resolution)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ImageConfig(_Frozen):
    """Fields added after the first checkpoints are left out of the stored document at their defaults, so an
    unconditional DCGAN config reads the same as it always did (and older readers still accept it)."""

    @model_serializer(mode="wrap")
    def _omit_new_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        if data.get("arch") == "dcgan":
            data.pop("arch")
        if data.get("n_classes") == 0:
            data.pop("n_classes")
            data.pop("class_dim", None)
        if data.get("mapping_layers") == 0:
            data.pop("mapping_layers")
            data.pop("mapping_width", None)
        return data


class ImageGeneratorConfig(_ImageConfig):
    """An image generator, z [N, z_dim] (and, when conditional, labels [N]) -> images [N, C, R, R] in [-1, 1].

    `arch: dcgan` (default): a 4x4 seed, then ConvTranspose2d doublings up to `resolution`, tanh output.
    `arch: resnet`: the WGAN-GP paper's residual generator: a linear layer to 4x4, one residual block per doubling
    (nearest-neighbour upsampling, 3x3 convolutions), batch norm, ReLU, a 3x3 convolution and tanh. The paper's
    CIFAR-10 network is `width: 128, max_width_mult: 1` at resolution 32; its 64x64 one `width: 64, max_width_mult: 8`.
    `n_classes > 0` makes it class-conditional: a learned `class_dim`-d embedding of the label is joined to z.
    `mapping_layers > 0` puts an MLP of that many `mapping_width`-wide layers (LeakyReLU) between the latent (with
    the label's embedding, if any) and the first layer (see models/latent_mapping.py).
    """

    kind: Literal["image"] = "image"
    arch: ImageArch = "dcgan"
    z_dim: int = Field(128, ge=1, le=MAX_Z_DIM)
    channels: Literal[1, 3] = 1
    resolution: Resolution = 32
    width: int = Field(64, ge=4, le=1024, description="channels of the last hidden block; earlier blocks double it")
    max_width_mult: int = Field(8, ge=1, le=32)
    norm: GeneratorNorm = "batch"
    n_classes: int = Field(0, ge=0, le=100_000, description="0: unconditional; else the number of classes")
    class_dim: int = Field(32, ge=1, le=4096, description="conditional: size of the label embedding joined to z")
    mapping_layers: int = Field(0, ge=0, le=8, description="fully connected layers between the latent and the image")
    mapping_width: int = Field(256, ge=1, le=4096, description="width of each mapping layer")


class ImageCriticConfig(_ImageConfig):
    """An image critic, images [N, C, R, R] (and, when conditional, labels [N]) -> scores [N].

    `arch: dcgan` (default): strided Conv2d halvings down to 4x4, LeakyReLU(0.2), a linear score.
    `arch: resnet`: the WGAN-GP paper's residual critic: residual blocks with mean-pool downsampling down to 8x8,
    two more residual blocks at 8x8, ReLU, a global mean pool and a linear score; no normalisation (`norm` is
    `none`, its default for this arch, or `spectral`).
    `n_classes > 0` makes it a projection critic (Miyato & Koyama 2018): score = psi(phi(x)) + <embed(y), phi(x)>,
    with phi(x) the features the linear score reads.
    """

    kind: Literal["image"] = "image"
    arch: ImageArch = "dcgan"
    channels: Literal[1, 3] = 1
    resolution: Resolution = 32
    width: int = Field(64, ge=4, le=1024, description="channels of the first block; later blocks double it")
    max_width_mult: int = Field(8, ge=1, le=32)
    norm: CriticNorm = "layer"
    n_classes: int = Field(0, ge=0, le=100_000, description="0: unconditional; else the number of classes")

    @model_validator(mode="before")
    @classmethod
    def _resnet_norm_default(cls, raw: Any) -> Any:
        """The residual critic has no normalisation unless asked for spectral norm."""
        if isinstance(raw, dict) and raw.get("arch") == "resnet" and "norm" not in raw:
            return {**raw, "norm": "none"}
        return raw

    @model_validator(mode="after")
    def _resnet_norms(self) -> ImageCriticConfig:
        if self.arch == "resnet" and self.norm not in ("none", "spectral"):
            raise ValueError(f"the resnet critic takes norm 'none' or 'spectral', not {self.norm!r}")
        return self


class PointGeneratorConfig(_Frozen):
    """MLP generator for 2-D point data."""

    kind: Literal["points"] = "points"
    z_dim: int = Field(2, ge=1, le=MAX_Z_DIM)
    hidden: int = Field(512, ge=1, le=8192)
    depth: int = Field(3, ge=1, le=16)
    out_dim: int = Field(2, ge=1, le=MAX_POINT_DIM)


class PointCriticConfig(_Frozen):
    """MLP critic for 2-D point data."""

    kind: Literal["points"] = "points"
    in_dim: int = Field(2, ge=1, le=MAX_POINT_DIM)
    hidden: int = Field(512, ge=1, le=8192)
    depth: int = Field(3, ge=1, le=16)
    norm: Literal["none", "layer", "spectral", "batch"] = "none"


GeneratorConfig = Annotated[ImageGeneratorConfig | PointGeneratorConfig, Field(discriminator="kind")]
CriticConfig = Annotated[ImageCriticConfig | PointCriticConfig, Field(discriminator="kind")]
