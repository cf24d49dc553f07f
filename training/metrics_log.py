"""The run's metrics records: one JSON object a line in RUN_DIR/metrics.jsonl, mirrored to TensorBoard when on.

Records carry `iteration` (the generator iteration) and `time_s`; loss records add the step's figures
(`wasserstein`, `gp`, `critic_loss`, `generator_loss`), sample records the mixtures' mode figures. Only the main
rank writes; the others hold a log that drops what it is given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.tensorboard_log import TensorBoardLog

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.path = run_dir / METRICS_FILE
        self.enabled = enabled
        self.tensorboard: TensorBoardLog | None = None

    def open(self, resumed_at: int | None, tensorboard: bool) -> None:
        """Start the file afresh, or on resume keep the records up to `resumed_at` and drop any written after."""
        if not self.enabled:
            return
        if resumed_at is not None and self.path.is_file():
            kept = [
                line
                for line in self.path.read_text(encoding="utf-8").splitlines()
                if json.loads(line).get("iteration", 0) <= resumed_at
            ]
            self.path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        else:
            self.path.write_text("", encoding="utf-8")
        if tensorboard:
            self.tensorboard = TensorBoardLog(self.path.parent, resumed_at)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            self.tensorboard.write(record)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines()]

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None
