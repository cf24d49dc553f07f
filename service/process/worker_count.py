"""How many worker processes `--workers auto` runs, and how many torch threads each gets.

On the CPU a forward pass of a small generator leaves most of a core idle while one process parses HTTP, encodes
images and runs its event loop; a process per core keeps every core busy (docs/performance.md, Worker processes,
measured on 2 cores: two workers answer 1.35-1.5x what one does, three no more than two). On CUDA one process
owns the device: a second would hold a second copy of every model and contend for the same GPU.
"""

from __future__ import annotations

import os

from service.settings import ServiceSettings


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and `taskset` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


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
