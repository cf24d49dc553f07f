"""Which queued items go into the next forward pass: a pure, single-threaded planner with no clock of its own.

The budget is counted in items (images to generate, frames, images to score), not requests: a request of
many items may span several batches, and many small requests share one. A batch is ready when the queue holds
`max_batch_size` items or the oldest item has waited `max_wait_s`. Jobs whose client has gone (cancelled) or
whose deadline has passed (expired) are taken out of the queue and reported, never planned; the items of a job
that expires part-way are not computed late either.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P")


@dataclass(eq=False)
class QueuedJob(Generic[P]):
    """One request's items. `payload` is what the engine thread needs (inputs, the reply slot); the planner never
    reads it."""

    payload: P
    n_items: int
    enqueued_at: float
    deadline: float
    planned: int = 0  # items [0, planned) are already in some batch
    cancelled: bool = False

    def __post_init__(self) -> None:
        if self.n_items < 1:
            raise ValueError(f"a job needs at least one item, got {self.n_items}")

    @property
    def remaining(self) -> int:
        return self.n_items - self.planned


@dataclass(frozen=True)
class BatchSlice(Generic[P]):
    """Items [start, stop) of `job` go into this batch."""

    job: QueuedJob[P]
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass
class BatchPlan(Generic[P]):
    slices: list[BatchSlice[P]] = field(default_factory=list)
    expired: list[QueuedJob[P]] = field(default_factory=list)
    cancelled: list[QueuedJob[P]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(s.size for s in self.slices)


class BatchPlanner(Generic[P]):
    """FIFO of jobs; `next_batch` takes up to `max_batch_size` items from the front, splitting a job if needed."""

    def __init__(self, max_batch_size: int, max_wait_s: float) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be greater than 0, got {max_batch_size}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._queue: deque[QueuedJob[P]] = deque()
        self._pending = 0  # items not yet planned, cancelled jobs included until they are dropped

    @property
    def pending_items(self) -> int:
        return self._pending

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, job: QueuedJob[P]) -> None:
        self._queue.append(job)
        self._pending += job.remaining

    def wait_time(self, now: float) -> float | None:
        """None when nothing is queued, 0 when `next_batch` should run now, else seconds until it should."""
        if not self._queue:
            return None
        head = self._queue[0]
        if self._pending >= self.max_batch_size or head.cancelled or head.planned > 0:
            return 0.0
        ready_at = min(head.enqueued_at + self.max_wait_s, head.deadline)
        return max(0.0, ready_at - now)

    def next_batch(self, now: float) -> BatchPlan[P]:
        """Take the next batch out of the queue (it may hold only dropped jobs, or nothing, when all were dropped)."""
        plan: BatchPlan[P] = BatchPlan()
        budget = self.max_batch_size
        while self._queue and budget > 0:
            job = self._queue[0]
            if job.cancelled or job.deadline <= now:
                self._queue.popleft()
                self._pending -= job.remaining
                (plan.cancelled if job.cancelled else plan.expired).append(job)
                continue
            take = min(job.remaining, budget)
            plan.slices.append(BatchSlice(job, job.planned, job.planned + take))
            job.planned += take
            self._pending -= take
            budget -= take
            if job.remaining == 0:
                self._queue.popleft()
        return plan

    def drain(self) -> list[QueuedJob[P]]:
        """Remove and return every queued job (shutdown)."""
        jobs = list(self._queue)
        self._queue.clear()
        self._pending = 0
        return jobs
