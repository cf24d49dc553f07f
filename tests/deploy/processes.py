"""Real processes for the deployment tests: wgan-serve replicas on loopback ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_for(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered 200")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


@dataclass
class Replica:
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def launch_replica(models_dir: Path, log_dir: Path) -> Replica:
    """`wgan-serve` as a real process on a free loopback port, returned once /readyz answers 200."""
    port = free_port()
    log = log_dir / f"wgan-serve-{port}.log"
    env = {**os.environ, "WGAN_TORCH_THREADS": "1"}
    cmd = [
        str(Path(sys.executable).parent / "wgan-serve"),
        "--models-dir",
        str(models_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    replica = Replica(port=port, proc=proc, log=log)
    try:
        wait_for(f"{replica.url}/readyz", timeout=60, proc=proc)
    except (RuntimeError, TimeoutError) as exc:
        replica.stop()
        raise AssertionError(f"{exc}\n{log.read_text()}") from exc
    return replica
