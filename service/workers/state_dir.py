"""The server's private state folder, made by the supervisor and removed when it exits.

    STATE/metrics/       prometheus_client's multiprocess files (PROMETHEUS_MULTIPROC_DIR)
    STATE/ready/INDEX    one file per worker that has loaded and warmed up its models (worker INDEX, 0-based)

A worker writes its ready file; the supervisor removes it when that worker exits, so any worker can tell whether
every worker is ready by counting files, without asking the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def ready(self) -> Path:
        return self.root / "ready"

    def create(self) -> None:
        self.metrics.mkdir(mode=0o700)
        self.ready.mkdir(mode=0o700)

    def mark_ready(self, index: int) -> None:
        """Worker `index` serves every model it found: written whole (temporary file, then rename)."""
        final = self.ready / str(index)
        partial = self.ready / f".{index}.{os.getpid()}"
        partial.write_text(str(os.getpid()))
        os.replace(partial, final)

    def mark_gone(self, index: int) -> None:
        """Worker `index` exited: not ready until its replacement says so."""
        (self.ready / str(index)).unlink(missing_ok=True)

    def ready_count(self) -> int:
        return sum(1 for name in os.listdir(self.ready) if not name.startswith("."))
