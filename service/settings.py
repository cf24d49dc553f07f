"""The service's settings: one pydantic-settings class, read from `WGAN_*` variables or `wgan-serve` flags.

Built once by the CLI (or a test) and passed to `create_app(settings)`; nothing reads the environment at import.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Dtype = Literal["float32", "float16", "bfloat16"]
Backend = Literal["auto", "eager", "channels_last", "compile", "onnxruntime"]
LogLevel = Literal["critical", "error", "warning", "info", "debug"]

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class ServiceSettings(BaseSettings):
    """Every knob of `wgan-serve`. Each field is also the flag `--field-name` and the variable `WGAN_FIELD_NAME`."""

    model_config = SettingsConfigDict(env_prefix="WGAN_", extra="forbid", frozen=True)

    models_dir: Path = Field(description="folder whose *.safetensors checkpoints are served, one model per file")
    default_model: str | None = Field(
        None, description="model used when a request names none (default: the first name in sorted order)"
    )
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on")
    device: str = Field("auto", description="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    dtype: Dtype = Field("float32", description="weights and activations; float16/bfloat16 need a CUDA device")
    backend: Backend = Field(
        "auto",
        description="how the generator runs: auto (onnxruntime on the CPU when ONNX Runtime is installed, which the "
        "serve extra does, else eager; eager on CUDA), eager PyTorch, eager with channels-last weights, compile "
        "(torch.compile, batch dimension dynamic; compiles during the warm-up, tens of seconds per model) or "
        "onnxruntime (CPU only; exported in memory at load, a fraction of a second per model)",
    )
    cuda_graphs: bool = Field(
        False,
        description="on CUDA: replay the generator from CUDA graphs captured for batch sizes 1, 2, 4, ... "
        "max_batch_size, each batch padded up to the next of them; needs a CUDA device and backend eager or "
        "channels_last",
    )
    max_batch_size: int = Field(64, gt=0, le=4096, description="most items in one forward pass")
    max_wait_ms: float = Field(
        0.0,
        ge=0,
        le=10_000,
        description="longest wait for more items after the first; at 0 a free worker takes whatever is queued, "
        "and items arriving during a forward pass form the next batch",
    )
    max_queue_items: int = Field(4096, gt=0, description="items waiting per model; past it requests get 503")
    max_queue_ms: float = Field(10_000, gt=0, description="longest an item may wait in the queue; then 504")
    retry_after_s: int = Field(1, ge=0, description="Retry-After seconds sent with 503 responses")
    max_images_per_sample: int = Field(64, gt=0, description="most images one /v1/sample request may ask for")
    max_frames: int = Field(256, ge=2, description="most frames one /v1/interpolate request may produce")
    max_images_per_score: int = Field(64, gt=0, description="most images (or points) one /v1/score request may send")
    max_decoded_pixels: int = Field(
        4096 * 4096, gt=0, description="largest width*height of an uploaded image, checked before decoding"
    )
    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0, description="largest request body accepted")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="comma-separated keys; when set, /v1/* needs 'Authorization: Bearer KEY' "
        "(prefer the environment variable: command lines are visible to other users)",
    )
    admin_key: SecretStr | None = Field(
        None,
        description="key for POST /v1/admin/reload ('Authorization: Bearer KEY'); unset: the admin API refuses "
        "every call (prefer the environment variable)",
    )
    reload_poll_s: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="seconds between scans of the models folder for new, changed or removed checkpoints; a file is "
        "loaded once its size and mtime hold still for one interval; 0 turns the watcher off",
    )
    drain_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="on SIGTERM: longest wait for requests in flight to finish before the process exits",
    )
    shutdown_delay_s: float = Field(
        0.0,
        ge=0,
        le=300,
        description="on SIGTERM: how long to keep serving normally with /readyz at 503, so balancers take the "
        "instance out, before the listener closes",
    )
    keep_alive_timeout_s: float = Field(5.0, gt=0, le=600, description="idle keep-alive connections close after this")
    request_read_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="longest a client may take to send a request's headers, and again its body; slower clients get "
        "408 and are disconnected",
    )
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, description="largest request line plus headers; past it the answer is 431"
    )
    max_headers: int = Field(100, ge=8, description="most header fields in one request; past it the answer is 431")
    codec_threads: int = Field(2, gt=0, le=64, description="threads that encode and decode images")
    torch_threads: int | None = Field(
        None,
        gt=0,
        description="torch intra-op threads per worker process; default: on CPU one fewer than the cores (at least "
        "1), leaving a core to the event loop and encoders, shared among the workers; on CUDA torch's own choice",
    )
    workers: Annotated[int, Field(ge=1, le=256)] | Literal["auto"] = Field(
        "auto",
        description="worker processes serving the one port, each with its own models and engines; auto: one per "
        "core on the CPU (the cores this process may use, a container's CPU limit included), 1 on CUDA; 1 runs the "
        "server in this process alone",
    )
    playground: bool = Field(
        True, description="serve the playground page at / (samples, latent walks, scores; a client of /v1/*)"
    )
    warmup: bool = Field(True, description="run each model at its batch sizes before reporting ready")
    log_level: LogLevel = Field("info", description="logging level")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys_not_blank(cls, value: list[SecretStr]) -> list[SecretStr]:
        for key in value:
            secret = key.get_secret_value()
            if any(ch.isspace() or ch == "," for ch in secret):
                raise ValueError("API keys must not contain whitespace or commas")
        return value

    @field_validator("admin_key")
    @classmethod
    def _admin_key_usable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if not secret or any(ch.isspace() for ch in secret):
            raise ValueError("the admin key must be non-empty and contain no whitespace")
        return value

    @field_validator("models_dir")
    @classmethod
    def _models_dir_exists(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError(f"models_dir {str(value)!r} is not a folder; create it or point --models-dir elsewhere")
        return value

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        value = value.strip().lower()
        if not _DEVICE_PATTERN.match(value):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")
        return value

    @model_validator(mode="after")
    def _admin_key_is_its_own(self) -> ServiceSettings:
        if self.admin_key is not None and self.admin_key.get_secret_value() in {
            key.get_secret_value() for key in self.api_keys
        }:
            raise ValueError("the admin key must differ from every API key")
        return self

    @model_validator(mode="after")
    def _cuda_graphs_need_cuda(self) -> ServiceSettings:
        if self.cuda_graphs and self.device == "cpu":
            raise ValueError("cuda_graphs needs a CUDA device; turn it off with device cpu")
        if self.cuda_graphs and self.backend == "compile":
            raise ValueError("cuda_graphs captures the eager generator; use backend eager or channels_last with it")
        return self

    @model_validator(mode="after")
    def _onnxruntime_on_cpu(self) -> ServiceSettings:
        if self.backend == "onnxruntime" and self.device.startswith("cuda"):
            raise ValueError("backend onnxruntime runs on the CPU only; use device cpu, or another backend on CUDA")
        return self

    @model_validator(mode="after")
    def _dtype_needs_cuda(self) -> ServiceSettings:
        if self.dtype != "float32" and self.device == "cpu":
            raise ValueError(f"dtype {self.dtype} needs a CUDA device; use dtype float32 with device cpu")
        return self
