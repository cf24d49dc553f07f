"""What the lifespan builds and every request reads: settings, metrics, the model registry, the codec threads,
the keys, the drain state and, in a worker process, its link to the other workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from service.catalog.registry import ModelRegistry
from service.metrics import ServiceMetrics
from service.settings import ServiceSettings
from service.workers.link import WorkerLink


class Drain:
    """Graceful stop: once draining begins, new API requests are refused with 503 while those in flight finish.

    Shared by the app (`service.api.middleware.drain_gate` counts requests in flight and refuses new ones) and the
    process that runs it (`service.process`, which starts draining on SIGTERM and waits for the count to reach zero
    before letting the server close). Every method is called on the event loop's thread.
    """

    def __init__(self) -> None:
        self._draining = False
        self._refusing = False
        self._in_flight = 0
        self._abandon: Callable[[], Awaitable[None]] | None = None

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def refusing(self) -> bool:
        """Whether new API requests are answered 503 (from when the listener closes; `draining` starts earlier)."""
        return self._refusing

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def begin(self) -> None:
        """`/readyz` answers 503 from now on; requests are still served (the shutdown delay)."""
        self._draining = True

    def refuse(self) -> None:
        """New API requests are answered 503 with `Retry-After` and `Connection: close` from now on."""
        self._draining = True
        self._refusing = True

    def enter(self) -> None:
        self._in_flight += 1

    def leave(self) -> None:
        self._in_flight -= 1

    def on_abandon(self, abandon: Callable[[], Awaitable[None]]) -> None:
        """What `abandon` runs: the app answers every request still queued (503) so none is cut off unanswered."""
        self._abandon = abandon

    async def abandon(self) -> None:
        """The drain timed out: have the app answer what is left now."""
        if self._abandon is not None:
            await self._abandon()

    async def wait_idle(self, timeout_s: float, poll_s: float = 0.02) -> bool:
        """Wait until no request is in flight; False when `timeout_s` ran out first."""
        deadline = time.monotonic() + timeout_s
        while self._in_flight > 0:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll_s)
        return True


@dataclass(frozen=True)
class ServiceRuntime:
    settings: ServiceSettings
    metrics: ServiceMetrics
    registry: ModelRegistry
    codec_pool: ThreadPoolExecutor
    api_keys: list[bytes]  # encoded once; compared in constant time by service.api.auth
    admin_key: bytes | None
    drain: Drain
    worker: WorkerLink | None = None  # this process is one of several workers of one server (None: the only one)
