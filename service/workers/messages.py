"""The messages on a worker's control channel: one JSON object per line.

worker -> supervisor: `{"op": "reload", "id": N}` (rescan everywhere, please),
                      `{"op": "scanned", "id": N, "scan": {...}}` (this worker's rescan);
supervisor -> worker: `{"op": "scan", "id": N}` (rescan now),
                      `{"op": "reloaded", "id": N, "scans": [...], "workers": W}` (every worker's rescan).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WorkerScan:
    """What one worker's rescan of the models folder did."""

    worker: int
    loaded: list[tuple[str, str]] = field(default_factory=list)  # (name, version)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "loaded": [list(pair) for pair in self.loaded],
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": [list(pair) for pair in self.failed],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerScan:
        return cls(
            worker=int(data["worker"]),
            loaded=[(str(a), str(b)) for a, b in data["loaded"]],
            unchanged=[str(n) for n in data["unchanged"]],
            removed=[str(n) for n in data["removed"]],
            failed=[(str(a), str(b)) for a, b in data["failed"]],
        )


@dataclass(frozen=True)
class BroadcastResult:
    """Every answer to one reload broadcast, and how many workers the supervisor had when it asked."""

    scans: list[WorkerScan]
    workers: int


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ValueError(f"not a control message: {line[:80]!r}")
    return message
