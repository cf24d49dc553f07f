"""How many worker processes `--workers auto` runs (the torch threads each gets: service/inference/cpu_cores.py).

On the CPU one process leaves a core partly idle: its event loop, encoders and forward passes take turns. A process
per core can use every core; on 2 cores two workers answered up to 1.16 times what one did, at 6 to 15 % more CPU
per request, and three workers only cost more (docs/performance.md, Worker processes). On CUDA one process owns the
device: a second would hold a second copy of every model and contend for the same GPU.
"""

from __future__ import annotations

from service.settings import ServiceSettings


def worker_count(settings: ServiceSettings, device_type: str, cores: int) -> int:
    if settings.workers != "auto":
        return settings.workers
    return cores if device_type == "cpu" else 1
