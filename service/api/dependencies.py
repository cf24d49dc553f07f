"""FastAPI dependencies that give routes typed access to what the lifespan built."""

from __future__ import annotations

from fastapi import Request

from service.runtime import ServiceRuntime


def get_runtime(request: Request) -> ServiceRuntime:
    runtime = request.state.runtime
    assert isinstance(runtime, ServiceRuntime)
    return runtime
