"""The batching engine of one model: requests queue their items, a dedicated thread runs the forward passes.

Pipeline per request: the route decodes and builds its input tensor, `submit` queues it, the engine thread
plans a batch (`BatchPlanner`), runs one forward pass under `torch.inference_mode()`, hands every request its
slice of the output, and a codec thread pool turns each finished request's array into its response body
(`postprocess`). The event loop only queues and awaits; it never runs a forward pass or an encoder.

Items carry their labels: a class-conditional model's generator items are latents with class weights (one-hot for a
plain label), and one forward pass mixes the classes of every request in it.

Each request gets its own answer: when a batched forward pass fails, its requests are re-run one by one so
that only the request that cannot be computed fails.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from service.engine.planner import BatchPlan, BatchPlanner, BatchSlice, QueuedJob
from service.errors import (
    ClientGoneError,
    InferenceError,
    NotReadyError,
    OverloadedError,
    QueueTimeoutError,
    ServiceError,
)
from service.metrics import ServiceMetrics

log = logging.getLogger(__name__)

R = TypeVar("R")

# A runner maps a batch of inputs [B, ...] (CPU), with their labels [B, ...] or None, to a batch of outputs
# [B, ...] (host numpy array).
Runner = Callable[[torch.Tensor, torch.Tensor | None], np.ndarray]
Postprocess = Callable[[np.ndarray], R]


@dataclass(frozen=True)
class Items:
    """The inputs of n items: `values` [n, ...] and, for a class-conditional model, `labels` [n, ...] (the
    generator's class weights [n, n_classes]), which travel with their rows through every batch."""

    values: torch.Tensor
    labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.labels is not None and self.labels.shape[0] != self.values.shape[0]:
            raise ValueError(f"{self.values.shape[0]} items but {self.labels.shape[0]} labels")

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    def part(self, start: int, stop: int) -> Items:
        labels = self.labels[start:stop] if self.labels is not None else None
        return Items(self.values[start:stop], labels)

    @staticmethod
    def join(parts: Sequence[Items]) -> Items:
        """One batch of the parts' rows, in order; parts with and without labels do not mix (ValueError)."""
        if len(parts) == 1:
            return parts[0]
        labelled = {p.labels is not None for p in parts}
        if len(labelled) > 1:
            raise ValueError("a batch cannot mix items with and without labels")
        labels = [p.labels for p in parts if p.labels is not None]
        return Items(torch.cat([p.values for p in parts]), torch.cat(labels) if labels else None)


@dataclass(frozen=True)
class Deferred:
    """Inputs of n items that the engine thread builds when the request is first planned.

    Drawing seeded latents is many small torch calls; each releases and re-takes the GIL, which on the event
    loop means waiting for whichever thread holds it. Built here, they cost the loop nothing.
    """

    n: int
    build: Callable[[], torch.Tensor | Items]


Inputs = torch.Tensor | Items | Deferred


class Op(StrEnum):
    GENERATE = "generate"
    SCORE = "score"


@dataclass(frozen=True)
class EngineLimits:
    max_batch_size: int
    max_wait_ms: float
    max_queue_items: int
    max_queue_ms: float


@dataclass(eq=False)
class _Request(Generic[R]):
    """What the engine thread needs to answer one request; `output` and `done` are touched by the engine thread only."""

    inputs: Inputs  # [n, ...] on the CPU (with labels or not), or how to build them
    postprocess: Postprocess[R]
    future: asyncio.Future[R]
    loop: asyncio.AbstractEventLoop
    output: np.ndarray | None = None  # [n, ...] once every slice is back
    done: int = 0
    answered: bool = False


_Job = QueuedJob[_Request[Any]]
_Answer = tuple[_Request[Any], Any, BaseException | None]


class BatchEngine:
    """One model's queue and engine thread. `submit` is called from the event loop; everything else runs on threads."""

    def __init__(
        self,
        model: str,
        runners: Mapping[Op, Runner],
        limits: EngineLimits,
        metrics: ServiceMetrics,
        codec_pool: Executor,
        codec_threads: int,
    ) -> None:
        self.model = model
        self._runners = dict(runners)
        self._limits = limits
        self._metrics = metrics
        self._codec_pool = codec_pool
        self._codec_chunks = max(1, codec_threads)
        max_wait_s = limits.max_wait_ms / 1000.0
        self._planners: dict[Op, BatchPlanner[_Request[Any]]] = {
            op: BatchPlanner(limits.max_batch_size, max_wait_s) for op in self._runners
        }
        self._ops = list(self._planners)
        self._turn = itertools.cycle(range(len(self._ops)))
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._depth_gauge = metrics.queue_depth.labels(model)
        self._per_op = {
            op: (
                metrics.queue_wait.labels(model, op.value),
                metrics.batch_size.labels(model, op.value),
                metrics.inference_seconds.labels(model, op.value),
                metrics.items.labels(model, op.value),
            )
            for op in self._ops
        }

    # ---- event-loop side -------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"engine {self.model!r} is already running")
        self._thread = threading.Thread(target=self._work, name=f"wgan-engine-{self.model}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in flight, answer every queued request with 503, and join the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("engine %s: worker still busy after %.0f s; leaving it behind", self.model, timeout)

    @property
    def queue_items(self) -> int:
        with self._cond:
            return self._pending_locked()

    async def submit(
        self,
        op: Op,
        inputs: Inputs,
        postprocess: Postprocess[R],
        until_gone: Callable[[], Awaitable[object]] | None = None,
    ) -> R:
        """Queue `inputs` (n items) for `op` and return `postprocess(outputs [n, ...])`, computed off the event loop.

        `until_gone`, when given, is awaited alongside: when it returns (the client went away) the request's
        remaining items are dropped before their forward pass and `ClientGoneError` is raised.
        """
        if op not in self._planners:
            raise InferenceError(f"model {self.model!r} cannot {op.value}")
        n = inputs.n if isinstance(inputs, Deferred | Items) else int(inputs.shape[0])
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        now = time.monotonic()
        job: _Job = QueuedJob(
            _Request(inputs, postprocess, future, loop), n, now, now + self._limits.max_queue_ms / 1000.0
        )
        with self._cond:
            if self._stopping:
                raise NotReadyError("the server is shutting down")
            depth = self._pending_locked()
            if depth + n > self._limits.max_queue_items:
                raise OverloadedError(
                    f"model {self.model!r} has {depth} items queued (limit {self._limits.max_queue_items}); retry later"
                )
            self._planners[op].push(job)
            self._cond.notify()
        self._depth_gauge.set(depth + n)
        watcher = loop.create_task(self._watch(until_gone, job)) if until_gone is not None else None
        try:
            return await future
        except asyncio.CancelledError:
            job.cancelled = True
            raise
        finally:
            if watcher is not None:
                watcher.cancel()

    @staticmethod
    async def _watch(until_gone: Callable[[], Awaitable[object]], job: _Job) -> None:
        await until_gone()
        job.cancelled = True
        future = job.payload.future
        if not future.done():
            future.set_exception(ClientGoneError("the client closed the connection"))

    # ---- engine thread --------------------------------------------------------------------------------------

    def _pending_locked(self) -> int:
        return sum(p.pending_items for p in self._planners.values())

    def _next_plan(self) -> tuple[Op, BatchPlan[_Request[Any]], int] | None:
        """Block until some op has a batch to run; None once stopping."""
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                soonest: float | None = None
                start = next(self._turn)
                for k in range(len(self._ops)):
                    op = self._ops[(start + k) % len(self._ops)]
                    wait = self._planners[op].wait_time(now)
                    if wait is None:
                        continue
                    if wait <= 0:
                        plan = self._planners[op].next_batch(now)
                        return op, plan, self._pending_locked()
                    soonest = wait if soonest is None else min(soonest, wait)
                self._cond.wait(soonest)
            return None

    def _work(self) -> None:
        try:
            while (picked := self._next_plan()) is not None:
                op, plan, depth = picked
                self._depth_gauge.set(depth)
                if plan.expired:
                    self._fail(
                        plan.expired,
                        QueueTimeoutError(
                            f"the request waited longer than {self._limits.max_queue_ms:g} ms in the queue"
                        ),
                    )
                if plan.slices:
                    self._execute(op, plan.slices)
        except BaseException:  # pragma: no cover - a bug here must not hang every request silently
            log.exception("engine %s: worker crashed", self.model)
            raise
        finally:
            with self._cond:
                self._stopping = True
                leftovers = [job for p in self._planners.values() for job in p.drain()]
            self._depth_gauge.set(0)
            self._fail(leftovers, NotReadyError("the server is shutting down"))

    def _execute(self, op: Op, slices: list[BatchSlice[_Request[Any]]]) -> None:
        wait_hist, size_hist, infer_hist, items_counter = self._per_op[op]
        now = time.monotonic()
        for s in slices:
            if s.start == 0:
                wait_hist.observe(now - s.job.enqueued_at)
        slices = self._build_inputs(slices)
        if not slices:
            return
        size = sum(s.size for s in slices)
        started = time.perf_counter()
        outcomes = self._forward(op, slices)
        infer_hist.observe(time.perf_counter() - started)
        size_hist.observe(size)
        items_counter.inc(size)

        finished: list[_Request[Any]] = []
        failed: list[_Answer] = []
        for s, outcome in zip(slices, outcomes, strict=True):
            req = s.job.payload
            if req.answered:
                continue
            if isinstance(outcome, BaseException):
                req.answered = True
                s.job.cancelled = True  # its other items, if still queued, are not worth computing
                failed.append((req, None, outcome))
                continue
            if s.size == s.job.n_items:
                req.output = outcome
            else:
                if req.output is None:
                    req.output = np.empty((s.job.n_items, *outcome.shape[1:]), dtype=outcome.dtype)
                req.output[s.start : s.stop] = outcome
            req.done += s.size
            if req.done == s.job.n_items:
                req.answered = True
                if not s.job.cancelled:
                    finished.append(req)
        if failed:
            _deliver(failed)
        self._postprocess(finished)

    def _build_inputs(self, slices: list[BatchSlice[_Request[Any]]]) -> list[BatchSlice[_Request[Any]]]:
        """Build deferred inputs; a request whose inputs cannot be built fails alone. Answered requests drop out."""
        ready: list[BatchSlice[_Request[Any]]] = []
        failed: list[_Answer] = []
        for s in slices:
            req = s.job.payload
            if req.answered:
                continue
            if isinstance(req.inputs, Deferred):
                try:
                    req.inputs = req.inputs.build()  # [n, ...]
                except Exception as exc:
                    if not isinstance(exc, ServiceError):
                        log.exception("engine %s: building a request's inputs failed", self.model)
                        exc = InferenceError(f"preparing the inputs failed: {exc.__class__.__name__}")
                    req.answered = True
                    s.job.cancelled = True
                    failed.append((req, None, exc))
                    continue
            ready.append(s)
        if failed:
            _deliver(failed)
        return ready

    def _forward(self, op: Op, slices: Sequence[BatchSlice[_Request[Any]]]) -> list[np.ndarray | BaseException]:
        """One forward pass for the whole batch; if it fails, one per request so only the culprit fails."""
        runner = self._runners[op]
        parts = [_built(s.job.payload).part(s.start, s.stop) for s in slices]
        try:
            batch = Items.join(parts)
            with torch.inference_mode():
                out = runner(batch.values, batch.labels)
            offsets = np.cumsum([0] + [s.size for s in slices])
            return [out[a:b] for a, b in itertools.pairwise(offsets)]
        except Exception as exc:
            if len(slices) == 1:
                log.exception("engine %s: %s forward pass failed", self.model, op.value)
                return [InferenceError(f"the {op.value} forward pass failed: {exc.__class__.__name__}")]
        log.warning("engine %s: batched %s failed; retrying its %d requests one by one", self.model, op, len(slices))
        return [self._forward(op, [s])[0] for s in slices]

    def _postprocess(self, finished: list[_Request[Any]]) -> None:
        if not finished:
            return
        n_chunks = min(self._codec_chunks, len(finished))
        for k in range(n_chunks):
            chunk = finished[k::n_chunks]
            try:
                self._codec_pool.submit(self._postprocess_chunk, chunk)
            except RuntimeError:  # the pool is shut down: the app is stopping
                self._fail_requests(chunk, NotReadyError("the server is shutting down"))

    def _postprocess_chunk(self, chunk: list[_Request[Any]]) -> None:
        answers: list[_Answer] = []
        for req in chunk:
            assert req.output is not None
            try:
                answers.append((req, req.postprocess(req.output), None))
            except ServiceError as exc:
                answers.append((req, None, exc))
            except Exception as exc:
                log.exception("engine %s: encoding a response failed", self.model)
                answers.append((req, None, InferenceError(f"encoding the result failed: {exc.__class__.__name__}")))
            req.output = None
        _deliver(answers)

    def _fail(self, jobs: Sequence[_Job], exc: ServiceError) -> None:
        self._fail_requests([job.payload for job in jobs], exc)

    def _fail_requests(self, requests: Sequence[_Request[Any]], exc: ServiceError) -> None:
        for req in requests:
            req.answered = True
        _deliver([(req, None, exc) for req in requests])


def _built(req: _Request[Any]) -> Items:
    assert not isinstance(req.inputs, Deferred), "deferred inputs are built before the forward pass"
    return req.inputs if isinstance(req.inputs, Items) else Items(req.inputs)


def _deliver(answers: Sequence[_Answer]) -> None:
    """Hand answers to their event loops: one wake-up per loop, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Answer]] = {}
    for answer in answers:
        by_loop.setdefault(answer[0].loop, []).append(answer)
    for loop, group in by_loop.items():
        try:
            loop.call_soon_threadsafe(_set_answers, group)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _set_answers(answers: list[_Answer]) -> None:
    for req, result, exc in answers:
        if req.future.done():
            continue
        if exc is not None:
            req.future.set_exception(exc)
        else:
            req.future.set_result(result)
