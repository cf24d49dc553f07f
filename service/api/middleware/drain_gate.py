"""ASGI middleware that counts requests in flight and, once the server refuses work, answers new API requests 503."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.error_responses import send_error
from service.runtime import Drain

# Always answered, draining or not: probes must see the drain, and metrics must be scraped until the end.
_OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class DrainMiddleware:
    """Counts HTTP requests in flight; while draining, answers new API requests 503 with `Connection: close`."""

    def __init__(self, app: ASGIApp, drain: Drain, retry_after_s: int) -> None:
        self.app = app
        self.drain = drain
        self.retry_after = str(retry_after_s).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.drain.refusing and scope["path"] not in _OPERATIONS_PATHS:
            await send_error(
                send,
                503,
                "shutting_down",
                "the server is shutting down; retry shortly or on another replica",
                [(b"retry-after", self.retry_after), (b"connection", b"close")],
            )
            return
        self.drain.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain.leave()
