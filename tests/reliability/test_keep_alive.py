"""The keep-alive timer of the guarded protocol never closes a connection under a request that has arrived.

The server runs uvicorn with uvloop. Each turn of its loop reads the sockets, then runs the callbacks, then the
timers that are due: a request that arrives on an idle connection while the loop is busy after its read, as the
keep-alive timeout ends, meets the timer first. Closing then, with the request unread in the kernel's buffer,
resets the connection under a request that came in time.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from service.process.http_protocol import guarded_protocol
from tests.ports import free_port
from tests.reliability.raw_http import read_response, request_bytes

KEEP_ALIVE_S = 1.0
# `/block` holds the loop (a stand-in for a loop busy with other work) past the keep-alive timeout, in a callback;
# a timer it set, due before the keep-alive timer, then holds it again after the loop's read of the sockets.
TASK_BLOCK_S = 1.2
TIMER_DUE_S, TIMER_BLOCK_S = 0.5, 0.6
# When the next request is sent after the first answer: while the timer holds the loop (1.2 to 1.8 s).
SEND_AT_S = 1.5


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    if scope["path"] == "/block":
        asyncio.get_running_loop().call_later(TIMER_DUE_S, time.sleep, TIMER_BLOCK_S)
        time.sleep(TASK_BLOCK_S)  # blocks the whole loop on purpose
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def server_port() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        _app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        lifespan="off",
        log_level="warning",
        http=guarded_protocol(64 * 1024, 100, 30.0),
        timeout_keep_alive=KEEP_ALIVE_S,  # type: ignore[arg-type]  # a float works, as in service.process
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def test_a_request_waiting_unread_when_the_keep_alive_timer_fires_is_answered(server_port: int) -> None:
    idle = socket.create_connection(("127.0.0.1", server_port), timeout=10)
    busy = socket.create_connection(("127.0.0.1", server_port), timeout=10)
    try:
        idle.sendall(request_bytes("GET", "/", {}))
        first = read_response(idle)
        assert first is not None and first.status == 200  # keep-alive timer armed: due in KEEP_ALIVE_S
        answered = time.monotonic()
        busy.sendall(request_bytes("GET", "/block", {}))  # the loop is stuck until past the keep-alive timeout
        time.sleep(SEND_AT_S - (time.monotonic() - answered))
        idle.sendall(request_bytes("GET", "/", {}))  # the loop has read the sockets: the timer comes first
        try:
            second = read_response(idle)
        except ConnectionResetError:
            second = None
        assert time.monotonic() - answered > KEEP_ALIVE_S  # the timer was due before the loop could read
        assert second is not None and second.status == 200, second
        blocked = read_response(busy)
        assert blocked is not None and blocked.status == 200
    finally:
        idle.close()
        busy.close()
