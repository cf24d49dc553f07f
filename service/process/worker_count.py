"""How many worker processes `--workers auto` runs, and how many torch threads each gets.

On the CPU one process leaves a core partly idle: its event loop, encoders and forward passes take turns. A process
per core can use every core; on 2 cores two workers answered up to 1.16 times what one did, at 6 to 15 % more CPU
per request, and three workers only cost more (docs/performance.md, Worker processes). On CUDA one process owns the
device: a second would hold a second copy of every model and contend for the same GPU.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from service.settings import ServiceSettings


def available_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """Cores this process may use: its CPU affinity (which `taskset` and cpusets narrow), and no more than its
    cgroup's CPU quota allows (a container's CPU limit, which the affinity does not show), rounded up."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cpu_quota(cgroup)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def _cpu_quota(cgroup: Path) -> float | None:
    """The cgroup's CPU limit in cores (cgroup v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), or None when unlimited."""
    try:
        fields = (cgroup / "cpu.max").read_text().split()
        if len(fields) == 2 and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def worker_count(settings: ServiceSettings, device_type: str, cores: int) -> int:
    if settings.workers != "auto":
        return settings.workers
    return cores if device_type == "cpu" else 1


def threads_per_worker(settings: ServiceSettings, device_type: str, workers: int, cores: int) -> int | None:
    """torch intra-op threads for each worker: the setting when given; on the CPU the cores less one for the event
    loops and encoders, shared among the workers (at least 1 each); on CUDA torch's own choice (None)."""
    if settings.torch_threads is not None:
        return settings.torch_threads
    if device_type != "cpu":
        return None
    return max(1, (cores - 1) // workers)
