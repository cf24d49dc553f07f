"""The checkpoint format: one `.safetensors` file shared by training (writer) and serving (reader).

Tensors are `generator.<param>` and `critic.<param>`; the safetensors header metadata key `wgan` holds one JSON
document (`CheckpointMetadata`). Loading never unpickles anything: a file either passes every check here and
rebuilds both modules with strict loading, or `CheckpointError` names the file and the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save_file
from torch import nn

from models.builders import build_critic, build_generator
from models.configs import (
    CriticConfig,
    GeneratorConfig,
    ImageCriticConfig,
    ImageGeneratorConfig,
    PointCriticConfig,
    PointGeneratorConfig,
)
from models.critic_reference import CriticReference

FORMAT_VERSION = 1
METADATA_KEY = "wgan"
_MAX_HEADER_BYTES = 100 * 1024 * 1024


class CheckpointError(ValueError):
    """A file is not a valid checkpoint; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: not a valid WGAN checkpoint: {reason}")


class CheckpointMetadata(BaseModel):
    """The `wgan` JSON document in the header. Unknown keys are kept (newer writers may add some)."""

    model_config = ConfigDict(extra="allow")

    format_version: int
    kind: Literal["image", "points"]
    z_dim: int = Field(ge=1)
    generator: GeneratorConfig
    critic: CriticConfig
    channels: int | None = None
    height: int | None = None
    width: int | None = None
    value_range: tuple[float, float] | None = None
    data_dim: int | None = None
    training: dict[str, Any] = Field(default_factory=dict)
    critic_reference: CriticReference
    classes: list[str] | None = Field(
        None, description="class-conditional models: the class names, label i naming class classes[i]"
    )
    class_references: dict[str, CriticReference] | None = Field(
        None,
        description="class-conditional models: class name -> the critic reference of that class (scores of its "
        "held-out images against it); absent in checkpoints written before these existed",
    )

    @property
    def n_classes(self) -> int:
        """0 for an unconditional model."""
        return len(self.classes) if self.classes else 0

    def reference_for(self, label: int | None) -> tuple[CriticReference, bool]:
        """The reference a score of class `label` is placed in, and whether it is that class's own (else the
        overall one: an unconditional model, no label, or a checkpoint without per-class references)."""
        if label is not None and self.classes and self.class_references:
            own = self.class_references.get(self.classes[label])
            if own is not None:
                return own, True
        return self.critic_reference, False

    @model_validator(mode="after")
    def _consistent(self) -> CheckpointMetadata:
        if self.class_references is not None:
            unknown = sorted(set(self.class_references) - set(self.classes or []))
            if unknown:
                raise ValueError(f"class_references name classes the model does not have: {unknown[:5]}")
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"unsupported format_version {self.format_version} (this code reads {FORMAT_VERSION})")
        if self.generator.kind != self.kind or self.critic.kind != self.kind:
            raise ValueError(f"kind {self.kind!r} does not match the generator/critic configs")
        if self.generator.z_dim != self.z_dim:
            raise ValueError(f"z_dim {self.z_dim} does not match the generator config ({self.generator.z_dim})")
        # Both configs are of `kind` now, so exactly one of these two branches applies.
        g, c = self.generator, self.critic
        if isinstance(g, ImageGeneratorConfig) and isinstance(c, ImageCriticConfig):
            geometry = (self.channels, self.height, self.width)
            if geometry != (g.channels, g.resolution, g.resolution):
                raise ValueError(f"image geometry {geometry} does not match the generator config")
            if (c.channels, c.resolution) != (g.channels, g.resolution):
                raise ValueError("critic and generator disagree on channels or resolution")
            if self.value_range is None or tuple(self.value_range) != (-1.0, 1.0):
                raise ValueError(f"image value_range must be [-1, 1], got {self.value_range}")
            if g.n_classes != c.n_classes:
                raise ValueError(f"generator has {g.n_classes} classes but the critic {c.n_classes}")
            if g.n_classes != self.n_classes:
                raise ValueError(f"the networks have {g.n_classes} classes but the metadata names {self.n_classes}")
            if self.classes is not None and len(set(self.classes)) != len(self.classes):
                raise ValueError("class names must be distinct")
            if self.classes is not None and not all(self.classes):
                raise ValueError("class names must be non-empty")
        elif isinstance(g, PointGeneratorConfig) and isinstance(c, PointCriticConfig):
            if g.out_dim != c.in_dim:
                raise ValueError("point generator out_dim and critic in_dim differ")
            if self.data_dim is not None and self.data_dim != g.out_dim:
                raise ValueError("data_dim does not match the generator's out_dim")
            if self.classes is not None:
                raise ValueError("point models are unconditional: classes must be absent")
        return self


def make_metadata(
    generator: GeneratorConfig,
    critic: CriticConfig,
    critic_reference: CriticReference,
    training: dict[str, Any] | None = None,
    classes: list[str] | None = None,
    class_references: dict[str, CriticReference] | None = None,
) -> CheckpointMetadata:
    """Fill kind, z_dim and geometry from the configs; `classes` names the labels of a class-conditional model,
    `class_references` holds its per-class critic references."""
    geometry: dict[str, Any]
    if generator.kind == "image":
        geometry = {
            "channels": generator.channels,
            "height": generator.resolution,
            "width": generator.resolution,
            "value_range": (-1.0, 1.0),
        }
    else:
        geometry = {"data_dim": generator.out_dim}
    return CheckpointMetadata(
        format_version=FORMAT_VERSION,
        kind=generator.kind,
        z_dim=generator.z_dim,
        generator=generator,
        critic=critic,
        training=training or {},
        critic_reference=critic_reference,
        classes=classes,
        class_references=class_references,
        **geometry,
    )


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    generator: nn.Module
    critic: nn.Module
    metadata: CheckpointMetadata
    sha256: str

    @property
    def version(self) -> str:
        return self.sha256[:12]

    @property
    def name(self) -> str:
        return self.path.stem


def save_checkpoint(
    path: str | os.PathLike[str], generator: nn.Module, critic: nn.Module, metadata: CheckpointMetadata
) -> Path:
    """Write atomically: a temporary file in the same folder, fsync, then os.replace."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (("generator", generator), ("critic", critic)):
        for key, value in module.state_dict().items():
            tensors[f"{prefix}.{key}"] = value.detach().to("cpu").contiguous().clone()
    absent = {key for key in ("classes", "class_references") if getattr(metadata, key) is None}
    header = {METADATA_KEY: metadata.model_dump_json(exclude=absent or None)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp_name, metadata=header)
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; a checkpoint is meant to be read by a serving user
        with open(tmp_name, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _parse_header(path: Path, data: bytes) -> dict[str, Any]:
    if len(data) < 8:
        raise CheckpointError(path, f"file is {len(data)} bytes, too short for a safetensors header")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > _MAX_HEADER_BYTES or 8 + header_len > len(data):
        raise CheckpointError(path, "header length exceeds the file (truncated, or not a safetensors file)")
    try:
        header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, f"header is not JSON ({exc.__class__.__name__}); not a safetensors file") from exc
    if not isinstance(header, dict):
        raise CheckpointError(path, "header is not a JSON object")
    payload = len(data) - 8 - header_len
    for key, info in header.items():
        if key == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise CheckpointError(path, f"tensor {key!r} has no valid data_offsets")
        if offsets[1] > payload:
            raise CheckpointError(path, f"tensor {key!r} extends past the end of the file (truncated)")
    return header


def _parse_metadata(path: Path, header: dict[str, Any]) -> CheckpointMetadata:
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or METADATA_KEY not in meta:
        raise CheckpointError(path, f"header metadata has no {METADATA_KEY!r} key")
    try:
        document = json.loads(meta[METADATA_KEY])
    except (TypeError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, f"metadata {METADATA_KEY!r} is not valid JSON") from exc
    if not isinstance(document, dict):
        raise CheckpointError(path, f"metadata {METADATA_KEY!r} is not a JSON object")
    if document.get("format_version") not in (None, FORMAT_VERSION) and isinstance(document.get("format_version"), int):
        raise CheckpointError(
            path, f"unsupported format_version {document['format_version']} (this code reads {FORMAT_VERSION})"
        )
    try:
        return CheckpointMetadata.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'metadata'}: {e['msg']}" for e in exc.errors())
        raise CheckpointError(path, f"metadata is malformed: {problems}") from exc


def _split_state(
    path: Path, tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    gen: dict[str, torch.Tensor] = {}
    crit: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        prefix, _, rest = key.partition(".")
        if prefix == "generator" and rest:
            gen[rest] = value
        elif prefix == "critic" and rest:
            crit[rest] = value
        else:
            raise CheckpointError(path, f"unexpected tensor {key!r} (expected generator.* or critic.*)")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(path, f"tensor {key!r} contains NaN or infinite values")
    return gen, crit


def _load_module(path: Path, module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first_line[:4])
        raise CheckpointError(path, f"{what} tensors do not fit its config: {detail}") from exc


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Checkpoint:
    """Validate and load a checkpoint; modules come back in eval mode on `device`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(path, f"cannot read the file ({exc.strerror or exc})") from exc
    header = _parse_header(path, data)
    metadata = _parse_metadata(path, header)
    try:
        tensors = load_safetensors_bytes(data)
    except SafetensorError as exc:
        raise CheckpointError(path, f"safetensors refused the file: {exc}") from exc
    gen_state, crit_state = _split_state(path, tensors)
    generator = build_generator(metadata.generator)
    critic = build_critic(metadata.critic)
    _load_module(path, generator, gen_state, "generator")
    _load_module(path, critic, crit_state, "critic")
    generator.to(device).eval()
    critic.to(device).eval()
    return Checkpoint(
        path=path,
        generator=generator,
        critic=critic,
        metadata=metadata,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def read_metadata(path: str | os.PathLike[str]) -> CheckpointMetadata:
    """Only the header's `wgan` document, validated (cheap: no tensors are built)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise CheckpointError(path, "too short for a safetensors header")
            (header_len,) = struct.unpack("<Q", head)
            if header_len > _MAX_HEADER_BYTES:
                raise CheckpointError(path, "header length is implausible; not a safetensors file")
            raw = fh.read(header_len)
    except OSError as exc:
        raise CheckpointError(path, f"cannot read the file ({exc.strerror or exc})") from exc
    if len(raw) < header_len:
        raise CheckpointError(path, "header is truncated")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, "header is not JSON; not a safetensors file") from exc
    if not isinstance(header, dict):
        raise CheckpointError(path, "header is not a JSON object")
    return _parse_metadata(path, header)
