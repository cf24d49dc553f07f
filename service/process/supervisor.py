"""A server of several worker processes on one port: the supervisor that binds the socket and keeps the workers.

The supervisor binds and listens once, then forks the workers, which inherit the listening socket (as gunicorn
does): the kernel hands each new connection to whichever worker accepts first, so a busy worker takes fewer. The
supervisor imported everything heavy (torch, the app) before forking and ran no torch operation, so a worker starts
without importing anything and shares those pages with its siblings until it writes them.

Each worker runs exactly what a server of one process runs (`service.process.uvicorn_server.serve`) on the
inherited socket. The supervisor:
- keeps a private state folder for the server (readiness files, prometheus_client's multiprocess files; see
  `service.workers.state_dir`), made at start and removed at exit;
- replaces a worker that dies (after a growing pause when workers die young, so a crash loop does not spin), and
  clears its ready file and its live gauges; the replacement loads its models before it accepts connections;
- broadcasts reloads: a worker asked for `POST /v1/admin/reload` asks the supervisor, which asks every worker to
  rescan and hands the answers back to the worker that asked;
- on SIGTERM or SIGINT closes its own copy of the listening socket at once and passes the signal on to every
  worker, each of which drains as a server of one process does; a second signal is passed on too (skip the
  waits). It exits 0 (130 after SIGINT) once every worker has exited;
- stops the server (exit 3) when a worker's start-up fails: a replacement would fail the same way.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import selectors
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import torch
from prometheus_client.multiprocess import mark_process_dead

from service.process.worker_main import EXIT_STARTUP_FAILED, run_worker
from service.settings import ServiceSettings
from service.workers.link import WorkerIdentity
from service.workers.messages import WorkerScan, decode, encode
from service.workers.state_dir import StateDir

log = logging.getLogger(__name__)

# The longest the supervisor waits for the workers' answers to a reload broadcast (a rescan may load and warm up
# several checkpoints); workers that have not answered by then are left out of the answer.
RELOAD_TIMEOUT_S = 120.0
# A worker that dies younger than this counts as a crash loop: the next replacement waits longer.
_YOUNG_S = 10.0
_FIRST_PAUSE_S = 0.5
_LONGEST_PAUSE_S = 30.0
_TICK_S = 0.5
_BACKLOG = 2048


@dataclass
class _Worker:
    index: int
    pid: int
    channel: socket.socket
    started: float
    buffer: bytes = b""
    watched: bool = True  # its channel is in the selector


@dataclass
class _Broadcast:
    origin: int  # the worker that asked
    origin_id: int  # its id for the request
    waiting: set[int]  # workers yet to answer
    workers: int  # how many were asked
    deadline: float
    scans: list[WorkerScan] = field(default_factory=list)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker serves, bound and listening before any worker starts."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
        0
    ]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


class Supervisor:
    def __init__(self, settings: ServiceSettings, workers: int) -> None:
        self._settings = settings
        self._count = workers
        self._workers: dict[int, _Worker] = {}  # by pid
        self._respawn_at: dict[int, float] = {}  # worker index -> when to start its replacement
        self._young_deaths = 0
        self._broadcasts: dict[int, _Broadcast] = {}
        self._broadcast_ids = itertools.count(1)
        self._stopping = False
        self._exit_code = 0
        self._selector = selectors.DefaultSelector()
        self._state = StateDir(Path(tempfile.mkdtemp(prefix="wgan-serve-")))
        self._listener: socket.socket | None = None
        self._wake_r = -1
        self._wake_w = -1

    def run(self) -> int:
        if torch.cuda.is_initialized():  # a CUDA context cannot be used in a forked child
            raise RuntimeError("CUDA was initialised before the workers were forked; this is a bug")
        if threading.active_count() > 1:
            log.warning("forking workers while %d threads run; they are not copied", threading.active_count())
        try:
            self._state.create()
            self._listener = bind(self._settings.host, self._settings.port)
            log.info(
                "serving http://%s:%d with %d worker processes (state folder %s)",
                self._settings.host,
                self._settings.port,
                self._count,
                self._state.root,
            )
            self._install_signals()
            for index in range(self._count):
                self._spawn(index, replacement=False)
            while self._workers or self._respawn_at:
                self._step()
            return self._exit_code
        finally:
            self._close_listener()
            signal.set_wakeup_fd(-1)
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._selector.close()
            shutil.rmtree(self._state.root, ignore_errors=True)
            log.info("stopped")

    # ---- the loop ----------------------------------------------------------------------------------------------

    def _step(self) -> None:
        now = time.monotonic()
        deadlines = [*self._respawn_at.values(), *(b.deadline for b in self._broadcasts.values())]
        timeout = max(0.0, min([now + _TICK_S, *deadlines]) - now)
        for key, _ in self._selector.select(timeout):
            if key.fd == self._wake_r:
                self._on_signals()
            else:
                self._on_message(key.data)
        self._reap()
        now = time.monotonic()
        for index, when in list(self._respawn_at.items()):
            if when <= now:
                del self._respawn_at[index]
                self._spawn(index, replacement=True)
        for broadcast_id, broadcast in list(self._broadcasts.items()):
            if broadcast.deadline <= now:
                log.warning("reload: %d worker(s) did not answer in time", len(broadcast.waiting))
                self._finish(broadcast_id)

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)  # each signal's number is written here: the loop reads them in order
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, _note)
        self._selector.register(self._wake_r, selectors.EVENT_READ)

    def _on_signals(self) -> None:
        try:
            received = os.read(self._wake_r, 64)
        except BlockingIOError:
            return
        for number in received:
            if number in (signal.SIGTERM, signal.SIGINT):
                self._stop(signal.Signals(number))

    def _stop(self, sig: signal.Signals) -> None:
        if not self._stopping:
            self._stopping = True
            self._exit_code = 130 if sig == signal.SIGINT else 0
            log.info("%s: draining %d worker(s)", sig.name, len(self._workers))
            self._close_listener()  # the socket closes once every worker has closed its copy too
            self._respawn_at.clear()
        for worker in self._workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, sig)

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # ---- workers -----------------------------------------------------------------------------------------------

    def _spawn(self, index: int, replacement: bool) -> None:
        assert self._listener is not None
        mine, theirs = socket.socketpair()
        identity = WorkerIdentity(index=index, count=self._count, state=self._state, wait_for_models=replacement)
        inherited = [mine.fileno(), self._wake_r, self._wake_w, self._selector_fd()]
        inherited += [w.channel.fileno() for w in self._workers.values()]
        pid = os.fork()
        if pid == 0:  # the worker; never returns
            run_worker(self._settings, identity, self._listener, theirs, [fd for fd in inherited if fd >= 0])
        theirs.close()
        worker = _Worker(index=index, pid=pid, channel=mine, started=time.monotonic())
        self._workers[pid] = worker
        self._selector.register(mine, selectors.EVENT_READ, worker)
        log.info("worker %d: pid %d%s", index, pid, " (a replacement)" if replacement else "")

    def _selector_fd(self) -> int:
        fileno = getattr(self._selector, "fileno", None)
        return fileno() if callable(fileno) else -1

    def _reap(self) -> None:
        while self._workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self._workers.pop(pid, None)
            if worker is not None:
                self._gone(worker, status)

    def _unwatch(self, worker: _Worker) -> None:
        if worker.watched:
            self._selector.unregister(worker.channel)
            worker.watched = False

    def _gone(self, worker: _Worker, status: int) -> None:
        self._unwatch(worker)
        worker.channel.close()
        mark_process_dead(worker.pid, str(self._state.metrics))  # type: ignore[no-untyped-call]
        self._state.mark_gone(worker.index)
        for broadcast_id, broadcast in list(self._broadcasts.items()):
            broadcast.waiting.discard(worker.index)
            if broadcast.origin == worker.index:
                del self._broadcasts[broadcast_id]
            elif not broadcast.waiting:
                self._finish(broadcast_id)
        how = _describe(status)
        if self._stopping:
            log.info("worker %d (pid %d) %s", worker.index, worker.pid, how)
            return
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_STARTUP_FAILED:
            log.error("worker %d (pid %d) failed to start; stopping the server", worker.index, worker.pid)
            self._stop(signal.SIGTERM)
            self._exit_code = EXIT_STARTUP_FAILED
            return
        lived = time.monotonic() - worker.started
        self._young_deaths = self._young_deaths + 1 if lived < _YOUNG_S else 0
        pause = (
            0.0 if self._young_deaths == 0 else min(_LONGEST_PAUSE_S, _FIRST_PAUSE_S * 2 ** (self._young_deaths - 1))
        )
        log.warning(
            "worker %d (pid %d) %s after %.1f s; replacing it in %g s", worker.index, worker.pid, how, lived, pause
        )
        self._respawn_at[worker.index] = time.monotonic() + pause

    # ---- the control channel -----------------------------------------------------------------------------------

    def _on_message(self, worker: _Worker) -> None:
        try:
            data = worker.channel.recv(65536)
        except OSError:
            data = b""
        if not data:  # the worker is exiting; reaping it does the rest
            self._unwatch(worker)
            return
        worker.buffer += data
        *lines, worker.buffer = worker.buffer.split(b"\n")
        for line in lines:
            try:
                message = decode(line)
            except ValueError:
                log.warning("worker %d sent a malformed control message", worker.index)
                continue
            if message["op"] == "reload":
                self._broadcast(worker, int(message["id"]))
            elif message["op"] == "scanned":
                self._collect(worker, int(message["id"]), WorkerScan.from_json(message["scan"]))

    def _broadcast(self, origin: _Worker, origin_id: int) -> None:
        broadcast_id = next(self._broadcast_ids)
        live = {w.index: w for w in self._workers.values() if w.watched}
        self._broadcasts[broadcast_id] = _Broadcast(
            origin=origin.index,
            origin_id=origin_id,
            waiting=set(live),
            workers=self._count,
            deadline=time.monotonic() + RELOAD_TIMEOUT_S,
        )
        for worker in live.values():
            self._send(worker, {"op": "scan", "id": broadcast_id})

    def _collect(self, worker: _Worker, broadcast_id: int, scan: WorkerScan) -> None:
        broadcast = self._broadcasts.get(broadcast_id)
        if broadcast is None or worker.index not in broadcast.waiting:
            return
        broadcast.waiting.discard(worker.index)
        broadcast.scans.append(scan)
        if not broadcast.waiting:
            self._finish(broadcast_id)

    def _finish(self, broadcast_id: int) -> None:
        broadcast = self._broadcasts.pop(broadcast_id)
        origin = next((w for w in self._workers.values() if w.index == broadcast.origin), None)
        if origin is None:
            return
        scans = sorted(broadcast.scans, key=lambda scan: scan.worker)
        answer = {"op": "reloaded", "id": broadcast.origin_id, "scans": [s.to_json() for s in scans]}
        self._send(origin, {**answer, "workers": broadcast.workers})

    def _send(self, worker: _Worker, message: dict[str, object]) -> None:
        try:
            worker.channel.sendall(encode(message))
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.EBADF):
                raise
            log.info("worker %d: its channel is closed", worker.index)


def _note(signum: int, frame: FrameType | None) -> None:
    """Signals are read from the wake-up pipe by the loop; the handler itself only has to exist."""


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def serve_workers(settings: ServiceSettings, workers: int) -> int:
    """Serve with `workers` processes until a signal asks to stop; the exit status for the command."""
    return Supervisor(settings, workers).run()
