"""`wgan-serve` as a real process on a free loopback port, with the flags an end-to-end test needs.

The process plumbing (free port, readiness wait, graceful stop) is the deployment tests' own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.deploy.processes import Replica, wait_for
from tests.ports import free_port


def start_serve(models_dir: Path, log: Path, *flags: str, ready_timeout: float = 90.0) -> Replica:
    """Start `wgan-serve --models-dir DIR --host 127.0.0.1 --port FREE FLAGS...` and wait for /readyz."""
    port = free_port()
    executable = Path(sys.executable).parent / "wgan-serve"
    cmd = [str(executable), "--models-dir", str(models_dir), "--host", "127.0.0.1", "--port", str(port), *flags]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WGAN_")}
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    server = Replica(port=port, proc=proc, log=log)
    try:
        wait_for(f"{server.url}/readyz", timeout=ready_timeout, proc=proc)
    except (RuntimeError, TimeoutError) as exc:
        server.stop()
        raise AssertionError(f"{exc}\n{log.read_text()}") from exc
    return server
