"""The training config: one pydantic model, read from YAML, overridable with `--set a.b=value`.

Every field has a documented default, so a run's YAML is a short diff. Unknown keys are refused everywhere
(`extra="forbid"`), and so is a critic with batch norm when the loss uses a per-sample gradient penalty.

Example (a short diff over the defaults)::

    name: digits16
    data: {dataset: digits, resolution: 16}
    model:
      generator: {z_dim: 32, width: 32}
      critic: {width: 32, norm: layer}
    train: {iterations: 2000, batch_size: 64, ema_decay: 0.999}

The `model.generator` / `model.critic` sections are the `models` package's architecture configs
(`PointGeneratorConfig`, `ImageCriticConfig`, ...). Their `kind` follows from the dataset, and for images
their `channels` and `resolution` follow from `data.channels` / `data.resolution`, so they need not be repeated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models import (
    CriticConfig,
    GeneratorConfig,
    ImageCriticConfig,
    ImageGeneratorConfig,
    PointCriticConfig,
    PointGeneratorConfig,
)

POINT_DATASETS = ("ring8", "grid25", "swissroll")
IMAGE_DATASETS = ("mnist5k", "digits")
PATH_PREFIXES = ("folder:", "npz:")


class ConfigError(ValueError):
    """A training config is invalid; the message says which key and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    """Where the training data comes from."""

    dataset: str = Field(
        "ring8",
        description="ring8 | grid25 | swissroll | mnist5k | digits | folder:PATH | npz:PATH",
    )
    resolution: int = Field(32, description="images only: square side in pixels (8, 16, 32, 64 or 128)")
    channels: Literal[1, 3] = Field(1, description="images only: 1 = grayscale, 3 = RGB")
    heldout: int | None = Field(
        None,
        ge=1,
        description="held-out size; none = the dataset's default: mnist5k 500 (50 per class, fixed), digits 180 "
        "(stratified), folder/npz 10 %, points 2,500 fresh samples from heldout_seed",
    )
    heldout_seed: int = Field(1234, description="seed of the held-out split (images) or held-out samples (points)")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        if value in POINT_DATASETS or value in IMAGE_DATASETS:
            return value
        for prefix in PATH_PREFIXES:
            if value.startswith(prefix):
                if not value[len(prefix) :].strip():
                    raise ValueError(f"{prefix!r} needs a path, e.g. '{prefix}data/my_images'")
                return value
        known = ", ".join(POINT_DATASETS + IMAGE_DATASETS)
        raise ValueError(f"unknown dataset {value!r}; use one of {known}, 'folder:PATH' or 'npz:PATH'")

    @property
    def kind(self) -> Literal["points", "image", "unknown"]:
        """Points or images; `npz:` files decide at load time (2-D arrays are points)."""
        if self.dataset in POINT_DATASETS:
            return "points"
        if self.dataset.startswith("npz:"):
            return "unknown"
        return "image"


class ModelConfig(_Strict):
    """Architectures; see the `models` package configs for every field and its default."""

    generator: GeneratorConfig = Field(default_factory=PointGeneratorConfig)
    critic: CriticConfig = Field(default_factory=PointCriticConfig)
    conditional: bool = Field(
        False,
        description="images: train a class-conditional model on labelled data (the class count comes from the data)",
    )

    @property
    def kind(self) -> str:
        return self.generator.kind

    @property
    def n_classes(self) -> int:
        """The networks' class count: 0 until a conditional run has read its data (see `with_classes`)."""
        return self.generator.n_classes if isinstance(self.generator, ImageGeneratorConfig) else 0


class LossConfig(_Strict):
    """The WGAN objective and how the critic is kept Lipschitz.

    - `gp`: WGAN-GP (Gulrajani et al. 2017), the default: lambda * E[(||grad C(x_hat)|| - 1)^2];
      `gp_one_sided` penalises only gradients steeper than the target, E[max(0, ||g|| - 1)^2].
    - `clip`: the original WGAN (Arjovsky et al. 2017): weights clamped to [-clip_value, clip_value] after every
      critic step, RMSProp at 5e-5 unless the optim section says otherwise; the only variant whose critic may
      use batch norm.
    - `spectral`: a spectral-norm critic (Miyato et al. 2018): no penalty; `model.critic.norm` must be `spectral`.
    """

    variant: Literal["gp", "clip", "spectral"] = Field("gp", description="gp | clip | spectral (see above)")
    gp_weight: float = Field(10.0, ge=0, description="lambda, the penalty's weight (paper: 10)")
    gp_target: float = Field(1.0, gt=0, description="the gradient norm the penalty pulls towards (paper: 1)")
    gp_one_sided: bool = Field(False, description="penalise max(0, ||g|| - target)^2 instead of (||g|| - target)^2")
    clip_value: float = Field(0.01, gt=0, description="clip: the weight bound c (paper: 0.01)")
    drift: float = Field(
        0.0, ge=0, description="eps of the drift term eps * E[C(real)^2] (0: off; 0.001 keeps scores near zero)"
    )

    @property
    def uses_gradient_penalty(self) -> bool:
        return self.variant == "gp"


class OptimConfig(_Strict):
    """The optimisers: Adam with WGAN-GP's defaults; RMSProp (5e-5) is the clip variant's default."""

    optimizer: Literal["auto", "adam", "rmsprop"] = Field(
        "auto", description="auto = RMSProp for loss.variant clip, Adam otherwise"
    )
    fused: bool = Field(True, description="Adam: the fused implementation where this torch build has one")
    n_critic: int = Field(5, ge=1, description="critic steps per generator step (paper: 5)")
    lr_generator: float = Field(1e-4, gt=0, description="learning rate of the generator (WGAN-GP: 1e-4; clip: 5e-5)")
    lr_critic: float = Field(1e-4, gt=0, description="learning rate of the critic (WGAN-GP: 1e-4; clip: 5e-5)")
    betas: tuple[float, float] = Field((0.0, 0.9), description="Adam betas (paper: 0, 0.9)")
    mapping_lr_scale: float = Field(
        1.0, gt=0, le=1, description="mapping layers of the generator: their share of lr_generator (StyleGAN: 0.01)"
    )
    lr_decay: bool = Field(False, description="decay both learning rates linearly to 0 over the iteration budget")

    def resolved(self, variant: str) -> Literal["adam", "rmsprop"]:
        """The optimiser `auto` stands for under a loss variant."""
        if self.optimizer == "auto":
            return "rmsprop" if variant == "clip" else "adam"
        return self.optimizer

    @field_validator("betas")
    @classmethod
    def _betas(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in value):
            raise ValueError(f"Adam betas must lie in [0, 1), got {value}")
        return value


class TrainLoopConfig(_Strict):
    """Budget, batch size and what the loop writes along the way."""

    iterations: int = Field(10_000, ge=1, description="generator iterations (the budget; --iterations overrides)")
    max_seconds: float | None = Field(
        None, gt=0, description="wall-time budget in seconds; the run stops early (and still finishes) when spent"
    )
    batch_size: int = Field(64, ge=2, description="batch size of real and generated samples")
    ema_decay: float | None = Field(
        0.999,
        ge=0,
        lt=1,
        description="EMA of the generator with this decay, stored as generator.* (none with no half-life: off)",
    )
    ema_half_life: float | None = Field(
        None, gt=0, description="EMA half-life in generator iterations instead of a decay (decay = 0.5 ** (1/h))"
    )
    ema_warmup: bool = Field(
        True, description="decay min(decay, (1 + t) / (10 + t)) at step t, so short runs average recent weights"
    )
    sample_every: int = Field(
        1000, ge=0, description="write a sample PNG every N generator iterations (0: only at the end)"
    )
    checkpoint_every: int = Field(
        0, ge=0, description="write a checkpoint every N generator iterations (0: only the final)"
    )
    log_every: int = Field(10, ge=1, description="refresh the progress bar's figures every N generator iterations")
    resume_every: int = Field(
        500, ge=0, description="write RUN_DIR/resume.pt every N generator iterations (0: only at the end)"
    )
    threads: int | None = Field(None, ge=1, description="torch CPU threads (none: torch's default)")
    amp: Literal["none", "bf16", "fp16"] = Field(
        "none",
        description="autocast the forward passes (bf16, or fp16 with loss scaling; either on CPU or CUDA, fp16 on the "
        "CPU being slow, for tests); weights, optimiser state and the penalty's gradient norm stay float32",
    )
    channels_last: bool = Field(True, description="images: channels_last memory format for both networks")
    tensorboard: bool = Field(
        False, description="also write the metrics records as TensorBoard scalars to RUN_DIR/tb (tensorboard package)"
    )

    @model_validator(mode="after")
    def _one_ema_setting(self) -> TrainLoopConfig:
        if self.ema_half_life is not None and "ema_decay" in self.model_fields_set and self.ema_decay is not None:
            raise ValueError("set train.ema_decay or train.ema_half_life, not both")
        return self

    @property
    def ema(self) -> float | None:
        """The EMA decay per generator iteration, or None when the EMA is off."""
        if self.ema_half_life is not None:
            return float(0.5 ** (1.0 / self.ema_half_life))
        return self.ema_decay


class EvalConfig(_Strict):
    """The figures computed at the end and written into the checkpoint."""

    reference_samples: int = Field(2000, ge=2, description="generated samples for the critic reference quantiles")
    point_samples: int = Field(2500, ge=1, description="points: samples for mode coverage and high-quality share")
    grid_size: int = Field(8, ge=1, le=32, description="images: the sample grid is grid_size x grid_size")
    quality_samples: int = Field(
        2000, ge=10, description="mnist5k: generated samples for the classifier figures (FD, coverage, KL, P/R)"
    )


class TrainConfig(_Strict):
    """A whole training run."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="checkpoint file stem")
    seed: int = Field(0, ge=0, description="seeds torch and the data sampling: same config + seed, same run on CPU")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainLoopConfig = Field(default_factory=TrainLoopConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="before")
    @classmethod
    def _fill_model_kind(cls, raw: Any) -> Any:
        """Give `model.generator` / `model.critic` their kind (and image geometry) from the data section."""
        if not isinstance(raw, dict):
            return raw
        data = raw.get("data") or {}
        model = raw.get("model")
        if model is None:
            model = {}
        if not isinstance(data, dict) or not isinstance(model, dict):
            return raw
        dataset = str(data.get("dataset", DataConfig.model_fields["dataset"].default))
        kind = "points" if dataset in POINT_DATASETS else "image"
        if dataset.startswith("npz:") and isinstance(model.get("generator"), dict):
            # npz arrays can be points or images: `model.generator.kind: points` says which (default image).
            kind = model["generator"].get("kind", kind)
        model = dict(model)
        for part in ("generator", "critic"):
            section = model.get(part)
            section = {} if section is None else section
            if not isinstance(section, dict):
                continue
            section = dict(section)
            section.setdefault("kind", kind)
            if section["kind"] == "image":
                section.setdefault("channels", data.get("channels", DataConfig.model_fields["channels"].default))
                section.setdefault("resolution", data.get("resolution", DataConfig.model_fields["resolution"].default))
            model[part] = section
        return {**raw, "model": model}

    @model_validator(mode="before")
    @classmethod
    def _variant_defaults(cls, raw: Any) -> Any:
        """The clip variant trains with RMSProp at 5e-5 (the paper's) unless the optim section says otherwise."""
        if not isinstance(raw, dict) or not isinstance(raw.get("loss"), dict) or raw["loss"].get("variant") != "clip":
            return raw
        optim = raw.get("optim") or {}
        if not isinstance(optim, dict):
            return raw
        optim = {"lr_generator": 5e-5, "lr_critic": 5e-5, **optim}
        return {**raw, "optim": optim}

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        g, c = self.model.generator, self.model.critic
        if g.kind != c.kind:
            raise ValueError(f"model.generator is {g.kind!r} but model.critic is {c.kind!r}")
        if self.data.kind not in ("unknown", g.kind):
            raise ValueError(f"dataset {self.data.dataset!r} is {self.data.kind} data but the model is {g.kind!r}")
        if isinstance(g, ImageGeneratorConfig) and isinstance(c, ImageCriticConfig):
            if (g.channels, g.resolution) != (self.data.channels, self.data.resolution):
                raise ValueError("model.generator channels/resolution must match data.channels/data.resolution")
            if (c.channels, c.resolution) != (self.data.channels, self.data.resolution):
                raise ValueError("model.critic channels/resolution must match data.channels/data.resolution")
        if isinstance(g, PointGeneratorConfig) and isinstance(c, PointCriticConfig) and g.out_dim != c.in_dim:
            raise ValueError(f"model.generator.out_dim ({g.out_dim}) must equal model.critic.in_dim ({c.in_dim})")
        if self.loss.uses_gradient_penalty and c.norm == "batch":
            raise ValueError(
                "model.critic.norm 'batch' cannot be used with a gradient penalty (loss.variant 'gp'): batch norm "
                "mixes samples, and the penalty is per sample. Use 'layer', 'instance', 'spectral' or 'none'."
            )
        if isinstance(g, ImageGeneratorConfig) and isinstance(c, ImageCriticConfig):
            if (g.n_classes or c.n_classes) and not self.model.conditional:
                raise ValueError("model.generator/critic n_classes are for conditional models: set model.conditional")
            if g.n_classes != c.n_classes:
                raise ValueError("model.generator.n_classes and model.critic.n_classes differ")
        elif self.model.conditional:
            raise ValueError("model.conditional is for image models; point models are unconditional")
        if self.loss.variant == "spectral" and c.norm != "spectral":
            raise ValueError(f"loss.variant 'spectral' needs model.critic.norm: spectral (got {c.norm!r})")
        return self


def with_classes(config: TrainConfig, n_classes: int) -> TrainConfig:
    """A conditional config with its networks sized for `n_classes` (the data's); ConfigError on a mismatch."""
    g, c = config.model.generator, config.model.critic
    if not (isinstance(g, ImageGeneratorConfig) and isinstance(c, ImageCriticConfig)):
        raise ConfigError("model.conditional is for image models")
    if g.n_classes not in (0, n_classes):
        raise ConfigError(f"model.generator.n_classes is {g.n_classes} but the data has {n_classes} classes")
    model = config.model.model_copy(
        update={
            "generator": g.model_copy(update={"n_classes": n_classes}),
            "critic": c.model_copy(update={"n_classes": n_classes}),
        }
    )
    return config.model_copy(update={"model": model})


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; training/config.py lists the allowed keys)"
        if len(loc) >= 3 and loc[0] == "model" and loc[1] in ("generator", "critic") and loc[2] in ("image", "points"):
            kind = loc.pop(2)  # the discriminated union's tag
            if err["type"] == "extra_forbidden":
                article = "an" if kind == "image" else "a"
                msg = (
                    f"unknown key for {article} {kind} {loc[1]} (its kind follows data.dataset; see models/configs.py)"
                )
        lines.append(f"  {'.'.join(loc) or '(top level)'}: {msg}")
    return "invalid training config:\n" + "\n".join(dict.fromkeys(lines))


def parse_override(item: str) -> tuple[list[str], Any]:
    """`a.b=value` -> (["a", "b"], value parsed as a YAML scalar)."""
    key, sep, raw = item.partition("=")
    path = [p.strip() for p in key.strip().split(".")]
    if not sep or not all(path):
        raise ConfigError(f"--set expects KEY.PATH=VALUE (e.g. train.batch_size=128), got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot parse {raw!r} as a YAML value ({exc.__class__.__name__})") from exc
    return path, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `raw` with each `a.b=value` applied; validation later rejects unknown keys."""
    result: dict[str, Any] = _deep_copy(raw)
    for item in overrides:
        path, value = parse_override(item)
        node = result
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(path[: i + 1])
                raise ConfigError(f"--set {'.'.join(path)}: {where} is a value, not a section")
            node = child
        node[path[-1]] = value
    return result


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def config_from_dict(raw: dict[str, Any], overrides: list[str] | None = None) -> TrainConfig:
    """Validate a raw mapping (plus overrides) into a TrainConfig; ConfigError with readable lines otherwise."""
    if not isinstance(raw, dict):
        raise ConfigError(f"a training config must be a mapping at the top level, got {type(raw).__name__}")
    merged = apply_overrides(raw, overrides or [])
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from exc


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (yaml.safe_load) and apply `a.b=value` overrides."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(raw).__name__}")
    try:
        return config_from_dict(raw, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
