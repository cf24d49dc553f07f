"""The models being served: published when loading finishes, then swapped one by one by the reloader.

Requests hold a *lease* on the model they use (`with registry.lease(name) as model:`) for as long as they need
it. A model that is replaced or removed while leased is retired only when its last lease ends, so swapping in
a new version never fails a request that is already using the old one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from models import CheckpointMetadata
from service.engine.batch_engine import BatchEngine
from service.errors import ModelNotFoundError, NotReadyError, clip
from service.inference.runner import ModelRunner


@dataclass(frozen=True, eq=False)
class ServedModel:
    name: str
    version: str
    metadata: CheckpointMetadata
    runner: ModelRunner
    engine: BatchEngine
    device: str
    dtype: str
    loaded_at: datetime
    path: Path | None = None

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


Retire = Callable[[ServedModel], None]


def _ignore(model: ServedModel) -> None:
    return None


class ModelRegistry:
    """Name -> served model. Written by the loader and the reloader, read by every request."""

    def __init__(self, preferred_default: str | None, retire: Retire = _ignore) -> None:
        self._preferred_default = preferred_default
        self._retire = retire
        self._models: dict[str, ServedModel] = {}
        self._default: str | None = None
        self._state = Readiness.LOADING
        self._lock = threading.Lock()
        self._leases: dict[ServedModel, int] = {}
        self._retiring: set[ServedModel] = set()

    @property
    def state(self) -> Readiness:
        return self._state

    @property
    def default_name(self) -> str | None:
        return self._default

    def publish(self, models: list[ServedModel]) -> str | None:
        """Serve exactly these models and end loading; returns a warning when the configured default is absent."""
        with self._lock:
            self._models = {m.name: m for m in models}
        return self.finish_loading()

    def finish_loading(self) -> str | None:
        """Loading is over: ready (or no models) unless draining; returns a warning when the default is absent."""
        with self._lock:
            warning = self._choose_default_locked()
            if self._state is not Readiness.DRAINING:
                self._state = Readiness.READY if self._models else Readiness.NO_MODELS
        return warning

    def replace(self, model: ServedModel) -> ServedModel | None:
        """Serve `model` under its name from now on; the model it replaces (if any) retires once unleased."""
        with self._lock:
            old = self._models.get(model.name)
            self._models[model.name] = model
            self._choose_default_locked()
            if self._state is Readiness.NO_MODELS:
                self._state = Readiness.READY
            retire_now = old is not None and self._retire_or_defer_locked(old)
        if retire_now:
            assert old is not None
            self._retire(old)
        return old

    def remove(self, name: str) -> ServedModel | None:
        """Stop serving `name`; the model retires once unleased."""
        with self._lock:
            old = self._models.pop(name, None)
            if old is None:
                return None
            self._choose_default_locked()
            if self._state is Readiness.READY and not self._models:
                self._state = Readiness.NO_MODELS
            retire_now = self._retire_or_defer_locked(old)
        if retire_now:
            self._retire(old)
        return old

    def start_draining(self) -> list[ServedModel]:
        """Refuse new work from now on; returns every model whose engine still runs (retiring ones included)."""
        with self._lock:
            self._state = Readiness.DRAINING
            return list(self._models.values()) + list(self._retiring)

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
                f"no model named {clip(name)!r}; see GET /v1/models", {"available": sorted(self._models)}
            )
        return model

    @contextmanager
    def lease(self, name: str | None) -> Iterator[ServedModel]:
        """`get(name)`, kept from retiring until the block ends."""
        with self._lock:
            model = self.get(name)
            self._leases[model] = self._leases.get(model, 0) + 1
        try:
            yield model
        finally:
            with self._lock:
                left = self._leases[model] - 1
                if left:
                    self._leases[model] = left
                else:
                    del self._leases[model]
                retire_now = not left and model in self._retiring
                if retire_now:
                    self._retiring.discard(model)
            if retire_now:
                self._retire(model)

    def _retire_or_defer_locked(self, old: ServedModel) -> bool:
        """True when `old` can retire now; otherwise it retires when its last lease ends."""
        if self._leases.get(old):
            self._retiring.add(old)
            return False
        return True

    def _choose_default_locked(self) -> str | None:
        names = sorted(self._models)
        warning = None
        if self._preferred_default is not None and self._preferred_default not in self._models:
            warning = (
                f"default model {self._preferred_default!r} is not being served (loaded: {names or 'none'}); "
                f"using {names[0] if names else None!r}"
            )
        if self._preferred_default in self._models:
            self._default = self._preferred_default
        else:
            self._default = names[0] if names else None
        return warning
