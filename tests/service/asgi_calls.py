"""Raw ASGI calls for the service tests that need what an HTTP client cannot do on cue: hang up mid-request, or
never send the body it announced."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]


async def post_sample(app: Any, receive: Receive, content_length: int) -> list[dict[str, Any]]:
    """One JSON `POST /v1/sample` through the ASGI interface, `receive` as its channel; the messages sent back."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"host", b"t"), (b"content-type", b"application/json"), (b"content-length", b"%d" % content_length)]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/sample", "raw_path": b"/v1/sample", "query_string": b"", "root_path": "",
        "headers": headers, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    await app(scope, receive, send)
    return sent


def body_then_leave(body: bytes, leave_after: float | None) -> Receive:
    """A receive channel: the body, then the client's disconnect `leave_after` seconds later (None: never)."""
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        if leave_after is None:
            await asyncio.Event().wait()
        await asyncio.sleep(leave_after or 0)
        return {"type": "http.disconnect"}

    return receive


def body_once_open(gate: asyncio.Event, body: bytes) -> Receive:
    """A receive channel whose body arrives when `gate` is set; the client then stays."""
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            await gate.wait()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


async def never_sending() -> dict[str, Any]:
    """A receive channel whose body never arrives."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")
