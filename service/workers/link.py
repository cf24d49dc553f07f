"""A worker's side of the server it belongs to: its index, the shared state folder and the control channel.

The app holds one when it runs as one of several worker processes (`service.process.supervisor`); a server of
one process has none. The channel is a connected Unix socket to the supervisor. On it the worker asks for a reload
broadcast and waits for every worker's answer, and answers the supervisor's own rescan requests. When the channel
ends, the supervisor is gone: the worker stops itself the way SIGTERM would (it drains), so no worker outlives
its server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from service.errors import ServiceError
from service.workers.messages import BroadcastResult, WorkerScan, decode, encode
from service.workers.state_dir import StateDir

log = logging.getLogger(__name__)

Rescan = Callable[[], Awaitable[WorkerScan]]


class SupervisorGoneError(ServiceError):
    """The supervisor stopped answering: the server is going away."""

    status = 503
    code = "shutting_down"


@dataclass(frozen=True)
class WorkerIdentity:
    index: int  # 0-based, reused by a replacement
    count: int  # how many workers the server runs
    state: StateDir
    wait_for_models: bool  # a replacement: accept connections only once its models are warm


def _stop_this_process() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # drain as on SIGTERM: the server this worker belonged to is gone


class WorkerLink:
    def __init__(
        self, identity: WorkerIdentity, channel: socket.socket, orphaned: Callable[[], None] = _stop_this_process
    ) -> None:
        self.identity = identity
        self._channel = channel
        self._orphaned = orphaned
        self._gone = False  # the channel ended
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[BroadcastResult]] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def index(self) -> int:
        return self.identity.index

    def mark_ready(self) -> None:
        self.identity.state.mark_ready(self.identity.index)

    def all_ready(self) -> bool:
        return self.identity.state.ready_count() >= self.identity.count

    async def start(self, rescan: Rescan) -> None:
        """Listen to the supervisor: rescan when asked, and route the answers to broadcasts this worker began."""
        reader, self._writer = await asyncio.open_connection(sock=self._channel)
        self._reader_task = asyncio.create_task(self._read(reader, rescan), name="wgan-worker-channel")

    async def close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        for task in list(self._tasks):
            task.cancel()
        if self._writer is not None:
            self._writer.close()
        self._fail_pending()

    async def reload_everywhere(self) -> BroadcastResult:
        """Have every worker rescan the models folder now; each worker's report, this one's included."""
        if self._gone or self._writer is None or self._writer.is_closing():
            raise SupervisorGoneError("the server is shutting down")
        request_id = next(self._ids)
        answer: asyncio.Future[BroadcastResult] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        try:
            try:
                self._writer.write(encode({"op": "reload", "id": request_id}))
                await self._writer.drain()
            except ConnectionError as exc:
                raise SupervisorGoneError("the server is shutting down") from exc
            return await answer
        finally:
            self._pending.pop(request_id, None)

    async def rescan_others(self) -> None:
        """This worker's watcher found a change: every worker rescans now, so they swap within moments of each
        other instead of each at its own next scan."""
        try:
            await self.reload_everywhere()
        except SupervisorGoneError:
            pass

    async def _read(self, reader: asyncio.StreamReader, rescan: Rescan) -> None:
        while True:
            line = await reader.readline()
            if not line:
                break
            try:
                message = decode(line)
            except ValueError:
                log.exception("ignoring a malformed control message")
                continue
            if message["op"] == "scan":
                task = asyncio.create_task(self._answer_scan(int(message["id"]), rescan))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif message["op"] == "reloaded":
                answer = self._pending.get(int(message["id"]))
                if answer is not None and not answer.done():
                    scans = [WorkerScan.from_json(s) for s in message["scans"]]
                    answer.set_result(BroadcastResult(scans=scans, workers=int(message["workers"])))
        self._gone = True
        self._fail_pending()
        log.warning("worker %d: the supervisor is gone; stopping", self.identity.index)
        self._orphaned()

    async def _answer_scan(self, request_id: int, rescan: Rescan) -> None:
        try:
            scan = await rescan()
        except Exception:
            log.exception("worker %d: rescanning the models folder failed", self.identity.index)
            scan = WorkerScan(worker=self.identity.index, failed=[("*", "the rescan failed; see the worker's log")])
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(encode({"op": "scanned", "id": request_id, "scan": scan.to_json()}))
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    def _fail_pending(self) -> None:
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(SupervisorGoneError("the server is shutting down"))
