"""The CPU cores this process may use, and how many torch threads a serving process gets from them."""

from __future__ import annotations

import math
import os
from pathlib import Path


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


def torch_threads(requested: int | None, device_type: str, processes: int, cores: int) -> int | None:
    """torch intra-op threads for each serving process: `requested` when given; on the CPU the cores less one for
    the event loops and encoders, shared among the processes (at least 1 each); elsewhere torch's own choice
    (None)."""
    if requested is not None:
        return requested
    if device_type != "cpu":
        return None
    return max(1, (cores - 1) // processes)
