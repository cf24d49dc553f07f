"""The contract shared by training and serving: networks, latent maths and the checkpoint format."""

from models.builders import build_critic, build_generator, has_batch_norm
from models.checkpoint import (
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    CheckpointMetadata,
    load_checkpoint,
    make_metadata,
    read_metadata,
    save_checkpoint,
)
from models.configs import (
    MAX_POINT_DIM,
    MAX_Z_DIM,
    CriticConfig,
    GeneratorConfig,
    ImageCriticConfig,
    ImageGeneratorConfig,
    PointCriticConfig,
    PointGeneratorConfig,
)
from models.critic_reference import CriticReference, build_class_references, build_reference
from models.latents import SEED_MAX, SEED_MIN, latent_for_seed, latents_for_seeds, lerp, slerp
from models.pixels import from_uint8, to_uint8

__all__ = [
    "FORMAT_VERSION",
    "MAX_POINT_DIM",
    "MAX_Z_DIM",
    "SEED_MAX",
    "SEED_MIN",
    "Checkpoint",
    "CheckpointError",
    "CheckpointMetadata",
    "CriticConfig",
    "CriticReference",
    "GeneratorConfig",
    "ImageCriticConfig",
    "ImageGeneratorConfig",
    "PointCriticConfig",
    "PointGeneratorConfig",
    "build_class_references",
    "build_critic",
    "build_generator",
    "build_reference",
    "from_uint8",
    "has_batch_norm",
    "latent_for_seed",
    "latents_for_seeds",
    "lerp",
    "load_checkpoint",
    "make_metadata",
    "read_metadata",
    "save_checkpoint",
    "slerp",
    "to_uint8",
]
