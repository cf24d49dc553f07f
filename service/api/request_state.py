"""What a request carries, read cheaply: the lifespan's state (Starlette copies it into each request's scope) and
single header values (one scan of the raw list, no `Headers` object built)."""

from __future__ import annotations

from starlette.requests import Request

from service.catalog.folder_sync import ModelReloader
from service.runtime import ServiceRuntime


def header(request: Request, name: bytes) -> str | None:
    """The first value of header `name` (lower case, as ASGI gives names), or None."""
    key: bytes
    value: bytes
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def runtime_of(request: Request) -> ServiceRuntime:
    runtime = request.scope["state"]["runtime"]
    assert isinstance(runtime, ServiceRuntime)
    return runtime


def reloader_of(request: Request) -> ModelReloader:
    reloader = request.scope["state"]["reloader"]
    assert isinstance(reloader, ModelReloader)
    return reloader
