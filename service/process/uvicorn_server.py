"""Run the app under uvicorn with a drain on SIGTERM/SIGINT and the guarded HTTP protocol.

On the first signal the server drains instead of closing at once, in the order balancers expect:
1. `/readyz` answers 503 at once;
2. for `shutdown_delay_s` the server keeps serving normally, so balancers take the instance out;
3. the listener closes: new connections are refused, which a client can safely retry elsewhere;
4. from then on every answer carries `Connection: close`, and requests that arrive on open keep-alive
   connections are answered 503 with `Retry-After` (never dropped);
5. requests in flight run to the end (past `drain_timeout_s` the engines are stopped, so every request still
   queued is answered 503 rather than cut off);
6. each keep-alive connection closes after its next answer, when its client closes it, or once it has received
   nothing for twice the keep-alive timeout since its last answer. A server can only close an idle connection
   safely when its client will not send on it any more: HTTP/1.1 has no way to warn the client, which may be
   writing its next request as the close arrives, and then sees the connection dropped without an answer. A client
   stops using a connection that has been idle for its own keep-alive timeout, which must be no longer than the
   server's (as in normal operation); but it counts from when it read the last answer, and a busy client reads it
   late (seconds late, measured on a loaded machine). Closing at the keep-alive timeout counted from the server's
   write, as uvicorn's timer does, met such clients as they reused the connection. So while draining the timer
   closes nothing, and the drain waits one more keep-alive timeout for late readers;
7. uvicorn's own shutdown follows (the lifespan's shutdown stops the engines) and the process exits 0.
A second signal skips the wait.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from types import FrameType

import uvicorn

from service.app import create_app
from service.process.http_protocol import GuardedHttpToolsProtocol, guarded_protocol
from service.runtime import Drain
from service.settings import ServiceSettings
from service.workers.link import WorkerLink

log = logging.getLogger(__name__)

# After the drain timeout, how long requests that were just answered 503 get to send their responses.
_ABANDON_GRACE_S = 2.0
# How often the drain looks for connections that have gone quiet.
_POLL_S = 0.1
# While draining, an idle keep-alive connection closes once quiet for this many keep-alive timeouts (docstring, 6).
_QUIET_TIMEOUTS = 2.0


class DrainingServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        drain: Drain,
        drain_timeout_s: float,
        shutdown_delay_s: float = 0.0,
        quiet_s: float = 5.0,
    ) -> None:
        super().__init__(config)
        self._quiet_s = quiet_s  # the keep-alive timeout
        self._drain = drain
        self._drain_timeout_s = drain_timeout_s
        self._shutdown_delay_s = shutdown_delay_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler runs between two bytecodes of whatever the loop was doing: only set flags and hand
        # the rest to the loop.
        if self._drain.draining or self._loop is None or not self.started:
            super().handle_exit(sig, frame)
            return
        self._drain.begin()
        self._loop.call_soon_threadsafe(self._start_drain, sig)

    def _start_drain(self, sig: int) -> None:
        self._drain_task = asyncio.ensure_future(self._drain_then_exit(sig))

    def _connections(self) -> list[GuardedHttpToolsProtocol]:
        return [c for c in self.server_state.connections if isinstance(c, GuardedHttpToolsProtocol)]

    async def _drain_then_exit(self, sig: int) -> None:
        started = time.monotonic()
        if self._shutdown_delay_s > 0:
            log.info("draining: /readyz answers 503; serving on for %g s", self._shutdown_delay_s)
            await asyncio.sleep(self._shutdown_delay_s)
        for server in self.servers:
            server.close()  # new connections are refused from now on: safe for a client to retry elsewhere
        self._drain.refuse()
        for connection in self._connections():
            connection.close_after_answer()
        log.info("draining: %d request(s) in flight, waiting up to %g s", self._drain.in_flight, self._drain_timeout_s)
        if await self._drain.wait_idle(self._drain_timeout_s):
            log.info("drained: no request in flight")
        else:
            log.warning("drain timeout: %d request(s) still in flight; answering them 503", self._drain.in_flight)
            await self._drain.abandon()
            await self._drain.wait_idle(_ABANDON_GRACE_S)
        # An open keep-alive connection may carry a request at any moment: each closes after its next answer
        # (Connection: close), when its client closes it, or once quiet long enough that its client has let it go.
        deadline = started + self._shutdown_delay_s + self._drain_timeout_s + _ABANDON_GRACE_S
        quiet_s = _QUIET_TIMEOUTS * self._quiet_s
        while True:
            open_ = [c for c in self._connections() if not c.close_if_quiet(quiet_s)]
            if not open_:
                break
            if time.monotonic() >= deadline:
                log.warning("drain timeout: closing %d connection(s) that are still busy", len(open_))
                break
            await asyncio.sleep(_POLL_S)
        log.info("drained: every connection closed")
        super().handle_exit(sig, None)


def serve(settings: ServiceSettings, sock: socket.socket | None = None, worker: WorkerLink | None = None) -> bool:
    """Serve until a signal asks to stop, then drain and return whether the server had started.

    A worker process of several (`service.process.worker_main`) serves on the listening socket `sock` its
    supervisor bound, and says which worker answered in an `X-Wgan-Worker` header."""
    drain = Drain()
    config = uvicorn.Config(
        create_app(settings, drain, worker),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        ws="none",  # no WebSocket endpoint: an upgrade request is answered as plain HTTP (see http_protocol)
        http=guarded_protocol(settings.max_header_bytes, settings.max_headers, settings.request_read_timeout_s),
        # uvicorn annotates this int but only hands it to loop.call_later, which takes float seconds.
        timeout_keep_alive=settings.keep_alive_timeout_s,  # type: ignore[arg-type]  # a float works
        timeout_graceful_shutdown=max(1, round(settings.drain_timeout_s)),
        headers=[] if worker is None else [("X-Wgan-Worker", str(worker.index))],
    )
    server = DrainingServer(
        config, drain, settings.drain_timeout_s, settings.shutdown_delay_s, settings.keep_alive_timeout_s
    )
    server.run(sockets=None if sock is None else [sock])
    return server.started
