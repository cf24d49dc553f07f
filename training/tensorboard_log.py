"""Optional TensorBoard logging: the records of RUN_DIR/metrics.jsonl, as scalars in RUN_DIR/tb, as they come.

The loss records (Wasserstein estimate, penalty, critic and generator losses: the loss curves' figures) go under
`loss/`, the mixture figures logged with each sample PNG (modes covered, high-quality share) under `samples/`;
the step is the generator iteration. `tensorboard --logdir RUN_DIR/tb` shows them while the run goes on.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from training.config import ConfigError

TB_DIR = "tb"
LOSS_KEYS = ("wasserstein", "gp", "critic_loss", "generator_loss")
NOT_SCALARS = ("iteration", "time_s")


class TensorBoardLog:
    """A SummaryWriter on RUN_DIR/tb; `write(record)` adds one scalar per numeric field of a metrics record."""

    def __init__(self, run_dir: Path, resume_from: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch imports the tensorboard package lazily, here
            raise ConfigError(
                "train.tensorboard needs the tensorboard package, which is not installed: "
                "pip install 'wgan-serve[train]' (or pip install tensorboard), or leave train.tensorboard off"
            ) from exc
        self.log_dir = run_dir / TB_DIR
        # On resume, drop the events a previous writer logged after the resume state was saved.
        purge = None if resume_from is None else resume_from + 1
        self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge)

    def write(self, record: dict[str, Any]) -> None:
        step = int(record["iteration"])
        for key, value in record.items():
            if key in NOT_SCALARS or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                group = "loss" if key in LOSS_KEYS else "samples"
                self._writer.add_scalar(f"{group}/{key}", float(value), step)

    def close(self) -> None:
        self._writer.close()
