"""ASGI middleware that counts requests in flight and, once the server refuses work, answers new API requests 503."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.error_responses import send_error
from service.runtime import Drain

# A refused request's body is read (up to these bounds) before the answer, since the connection closes after it.
_DISCARD_MAX_BYTES = 1 << 20
_DISCARD_MAX_S = 1.0

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
            await _read_rest_of_body(receive)
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


async def _read_rest_of_body(receive: Receive) -> None:
    """Read what the client is still sending of its body, within bounds.

    The 503 closes the connection. Bytes of the body that arrive after the close make the kernel answer with a
    reset, which can destroy the 503 before the client has read it: the client then sees a connection dropped
    without an answer (RFC 9112, 9.6). Waiting for the body first leaves nothing in flight when the socket closes.
    """
    read = 0
    try:
        async with asyncio.timeout(_DISCARD_MAX_S):
            while read <= _DISCARD_MAX_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                read += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return
