"""`wgan-serve` as a real process on a free loopback port, for the end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServeProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> int:
        """SIGTERM (graceful shutdown), then the exit status; killed only if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_serve(models_dir: Path, log: Path, *flags: str, ready_timeout: float = 90.0) -> ServeProcess:
    """Start `wgan-serve --models-dir DIR --host 127.0.0.1 --port FREE FLAGS...` and wait for /readyz."""
    port = free_port()
    executable = Path(sys.executable).parent / "wgan-serve"
    cmd = [str(executable), "--models-dir", str(models_dir), "--host", "127.0.0.1", "--port", str(port), *flags]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WGAN_")}
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    server = ServeProcess(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"wgan-serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise TimeoutError(f"wgan-serve was not ready within {ready_timeout} s:\n{log.read_text()}")
