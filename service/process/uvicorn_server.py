"""Run the app under uvicorn with a drain on SIGTERM/SIGINT and the guarded HTTP protocol.

On the first signal the server starts draining instead of closing at once: `/readyz` answers 503, new API
requests are refused with a 503 envelope (and `Connection: close`), and requests already in flight run to the
end. Once none is left, uvicorn's own shutdown follows (listeners closed, the lifespan's shutdown stops the
engines). Past `drain_timeout_s` the engines are stopped first, so every request still queued is answered
503 rather than cut off. A second signal skips the wait.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from types import FrameType

import uvicorn

from service.app import create_app
from service.process.http_protocol import guarded_protocol
from service.runtime import Drain
from service.settings import ServiceSettings

log = logging.getLogger(__name__)

# After the drain timeout, how long requests that were just answered 503 get to send their responses.
_ABANDON_GRACE_S = 2.0


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain, drain_timeout_s: float) -> None:
        super().__init__(config)
        self._drain = drain
        self._drain_timeout_s = drain_timeout_s
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

    async def _drain_then_exit(self, sig: int) -> None:
        log.info("draining: %d request(s) in flight, waiting up to %g s", self._drain.in_flight, self._drain_timeout_s)
        if await self._drain.wait_idle(self._drain_timeout_s):
            log.info("drained: no request in flight")
        else:
            log.warning("drain timeout: %d request(s) still in flight; answering them 503", self._drain.in_flight)
            await self._drain.abandon()
            await self._drain.wait_idle(_ABANDON_GRACE_S)
        super().handle_exit(sig, None)


def serve(settings: ServiceSettings) -> None:
    """Serve until a signal asks to stop, then drain and return."""
    drain = Drain()
    config = uvicorn.Config(
        create_app(settings, drain),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        ws="none",  # no WebSocket endpoint: an upgrade request is answered as plain HTTP (see http_protocol)
        http=guarded_protocol(settings.max_header_bytes, settings.max_headers, settings.request_read_timeout_s),
        # uvicorn annotates this int but only hands it to loop.call_later, which takes float seconds.
        timeout_keep_alive=settings.keep_alive_timeout_s,  # type: ignore[arg-type]  # a float works
        timeout_graceful_shutdown=max(1, round(settings.drain_timeout_s)),
    )
    DrainingServer(config, drain, settings.drain_timeout_s).run()
