"""Where a run stands: the generator iteration, the figures of the last one, and the run's clock."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Progress:
    iteration: int = 0
    last: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        """Seconds of training so far, across resumes (a resumed run moves `started` back by the time it had)."""
        return time.perf_counter() - self.started
