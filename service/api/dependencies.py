"""FastAPI dependencies that give routes typed access to what the lifespan built.

They are `async def` on purpose: FastAPI runs plain `def` dependencies in a thread pool, a thread hop per request.
"""

from __future__ import annotations

from fastapi import Request

from service.catalog.folder_sync import ModelReloader
from service.runtime import ServiceRuntime


async def get_runtime(request: Request) -> ServiceRuntime:
    runtime = request.state.runtime
    assert isinstance(runtime, ServiceRuntime)
    return runtime


async def get_reloader(request: Request) -> ModelReloader:
    reloader = request.state.reloader
    assert isinstance(reloader, ModelReloader)
    return reloader
