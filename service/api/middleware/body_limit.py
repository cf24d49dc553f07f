"""ASGI middleware that reads request bodies up to a byte limit and a time limit, answering 413 or 408 past them.

A declared Content-Length over the limit is refused before reading anything; a chunked body is read until it
crosses the limit. A body that has not fully arrived within the read deadline (a client trickling bytes to hold
the connection) is answered 408 and the connection closed. Accepted bodies are replayed to the app, after which
`receive` passes through to the server, so the app can still notice the client disconnecting.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.error_responses import send_error

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_CLOSE = [(b"connection", b"close")]


class _ClientGone(Exception):
    pass


@dataclass(frozen=True)
class BodyRefusal:
    """Why a body was not read: `status` 408 or 413 with its message, or None when the client left (no answer)."""

    status: int | None
    code: str = ""
    message: str = ""

    async def answer(self, send: Send) -> None:
        if self.status is not None:
            await send_error(send, self.status, self.code, self.message, _CLOSE)


def too_large(max_body_bytes: int) -> BodyRefusal:
    return BodyRefusal(413, "payload_too_large", f"the request body is larger than {max_body_bytes} bytes")


async def read_body(receive: Receive, max_body_bytes: int, read_timeout_s: float) -> bytes | BodyRefusal:
    """The whole body within the byte and time limits, or why not (the declared length was checked before)."""
    try:
        async with asyncio.timeout(read_timeout_s):
            body = await _read(receive, max_body_bytes)
    except TimeoutError:
        return BodyRefusal(408, "request_timeout", f"the request body did not arrive within {read_timeout_s:g} s")
    except _ClientGone:
        return BodyRefusal(None)
    return too_large(max_body_bytes) if body is None else body


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, read_timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = content_length(scope)
        if declared is None:
            await send_error(send, 400, "malformed_body", "the Content-Length header is not a number", _CLOSE)
            return
        if declared > self.max_body_bytes:
            await too_large(self.max_body_bytes).answer(send)
            return
        body = await read_body(receive, self.max_body_bytes, self.read_timeout_s)
        if isinstance(body, BodyRefusal):
            await body.answer(send)
            return
        await self.app(scope, replay(body, receive), send)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that gives `body` as one message, then passes through to `receive`."""
    replayed = False

    async def replaying() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replaying


async def _read(receive: Receive, max_body_bytes: int) -> bytes | None:
    """The whole body, or None once it crosses the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def content_length(scope: Scope) -> int | None:
    """The declared length, 0 when absent (chunked), None when unparseable."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
            return length if length >= 0 else None
    return 0
