"""ASGI middleware that reads request bodies up to a byte limit and a time limit, answering 413 or 408 past them.

A declared Content-Length over the limit is refused before reading anything; a chunked body is read until it
crosses the limit. A body that has not fully arrived within the read deadline (a client trickling bytes to hold
the connection) is answered 408 and the connection closed. Accepted bodies are replayed to the app, after which
`receive` passes through to the server, so the app can still notice the client disconnecting.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import send_error

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_CLOSE = [(b"connection", b"close")]


class _ClientGone(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, read_timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is None:
            await send_error(send, 400, "malformed_body", "the Content-Length header is not a number", _CLOSE)
            return
        if declared > self.max_body_bytes:
            await self._too_large(send)
            return
        try:
            async with asyncio.timeout(self.read_timeout_s):
                body = await self._read(receive)
        except TimeoutError:
            await send_error(
                send,
                408,
                "request_timeout",
                f"the request body did not arrive within {self.read_timeout_s:g} s",
                _CLOSE,
            )
            return
        except _ClientGone:
            return
        if body is None:
            await self._too_large(send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it crosses the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _too_large(self, send: Send) -> None:
        await send_error(
            send, 413, "payload_too_large", f"the request body is larger than {self.max_body_bytes} bytes", _CLOSE
        )


def _content_length(scope: Scope) -> int | None:
    """The declared length, 0 when absent (chunked), None when unparseable."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
            return length if length >= 0 else None
    return 0
