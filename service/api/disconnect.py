"""Notice a client that went away while its request waits in a queue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import Receive


def until_disconnected(receive: Receive) -> Callable[[], Awaitable[None]]:
    """A coroutine function that returns once the server reports `http.disconnect` (call it after the body is read).

    `receive` is the request's ASGI receive channel (`request.receive` in a route).
    """

    async def wait() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    return wait
