"""The models being served, published all at once when loading and warm-up have finished."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from models import CheckpointMetadata
from service.engine.worker import BatchEngine
from service.errors import ModelNotFoundError, NotReadyError
from service.model_runner import ModelRunner


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    metadata: CheckpointMetadata
    runner: ModelRunner
    engine: BatchEngine
    device: str
    dtype: str
    loaded_at: datetime

    @property
    def kind(self) -> str:
        return self.metadata.kind

    @property
    def z_dim(self) -> int:
        return self.metadata.z_dim


class Readiness(StrEnum):
    LOADING = "loading"
    READY = "ready"
    NO_MODELS = "no_models"
    DRAINING = "draining"


class ModelRegistry:
    """Name -> served model. Written once by the loader, then read by every request."""

    def __init__(self, preferred_default: str | None) -> None:
        self._preferred_default = preferred_default
        self._models: dict[str, ServedModel] = {}
        self._default: str | None = None
        self._state = Readiness.LOADING
        self._lock = threading.Lock()

    @property
    def state(self) -> Readiness:
        return self._state

    @property
    def default_name(self) -> str | None:
        return self._default

    def publish(self, models: list[ServedModel]) -> str | None:
        """Make the models visible; returns a warning when the configured default is not among them."""
        warning = None
        with self._lock:
            self._models = {m.name: m for m in models}
            names = sorted(self._models)
            if self._preferred_default is not None and self._preferred_default not in self._models:
                warning = (
                    f"default model {self._preferred_default!r} is not being served (loaded: {names or 'none'}); "
                    f"using {names[0] if names else None!r}"
                )
            if self._preferred_default in self._models:
                self._default = self._preferred_default
            else:
                self._default = names[0] if names else None
            if self._state is not Readiness.DRAINING:
                self._state = Readiness.READY if models else Readiness.NO_MODELS
        return warning

    def start_draining(self) -> list[ServedModel]:
        with self._lock:
            self._state = Readiness.DRAINING
            return list(self._models.values())

    def all(self) -> list[ServedModel]:
        return sorted(self._models.values(), key=lambda m: m.name)

    def check_serving(self) -> None:
        """Raise NotReadyError while loading or draining."""
        state = self._state
        if state is Readiness.LOADING:
            raise NotReadyError("models are still loading; retry shortly")
        if state is Readiness.DRAINING:
            raise NotReadyError("the server is shutting down")

    def get(self, name: str | None) -> ServedModel:
        """The named model, or the default one; raises NotReadyError while loading or draining."""
        self.check_serving()
        key = self._default if name is None else name
        model = self._models.get(key) if key is not None else None
        if model is None:
            if name is None:
                raise ModelNotFoundError("no model is being served; put checkpoints in the models folder")
            raise ModelNotFoundError(
                f"no model named {name!r}; see GET /v1/models", {"available": sorted(self._models)}
            )
        return model
