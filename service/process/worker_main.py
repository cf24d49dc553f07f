"""The life of one forked worker process: undo what it inherited from the supervisor, then run exactly what a
server of one process runs (`serve`), on the listening socket the supervisor bound."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

from service.metrics import enable_multiprocess
from service.process.uvicorn_server import serve
from service.settings import ServiceSettings
from service.workers.link import WorkerIdentity, WorkerLink

log = logging.getLogger(__name__)

# Exit statuses of a worker, read by the supervisor.
EXIT_OK = 0
EXIT_INTERRUPTED = 130
EXIT_FAILED = 1
EXIT_STARTUP_FAILED = 3  # as uvicorn's: the app's start-up failed, and a replacement would fail alike


def _exit_with(code: int) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(code)

    return handler


def run_worker(
    settings: ServiceSettings,
    identity: WorkerIdentity,
    listener: socket.socket,
    channel: socket.socket,
    inherited: list[int],
) -> None:
    """Runs in the child right after `fork`; never returns (the child must not run the supervisor's code)."""
    code = EXIT_STARTUP_FAILED
    try:
        # The supervisor's signal plumbing is its own: a signal here must not wake the supervisor's loop.
        signal.set_wakeup_fd(-1)
        for fd in inherited:  # the supervisor's ends of every channel, and its wake-up pipe
            os.close(fd)
        # A terminal's Ctrl-C reaches the whole foreground process group; the supervisor forwards it once.
        os.setpgid(0, 0)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, _exit_with(EXIT_OK))  # after the drain uvicorn re-raises the signal here
        signal.signal(signal.SIGINT, _exit_with(EXIT_INTERRUPTED))
        enable_multiprocess(identity.state.metrics)
        log.info("worker %d started (pid %d)", identity.index, os.getpid())
        started = serve(settings, listener, WorkerLink(identity, channel))
        code = EXIT_OK if started else EXIT_STARTUP_FAILED
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else EXIT_STARTUP_FAILED
    except BaseException:
        log.exception("worker %d failed", identity.index)
        code = EXIT_FAILED
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
