"""Notice a client that went away while its request waits in a queue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request


def until_disconnected(request: Request) -> Callable[[], Awaitable[None]]:
    """A coroutine function that returns once the server reports `http.disconnect` (call it after the body is read)."""
    receive = request.receive

    async def wait() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    return wait
