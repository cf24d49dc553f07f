"""The batching engine with real torch runners: shared and spanning batches, isolation, limits, cancellation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import torch

from service.engine.batch_engine import BatchEngine, Deferred, EngineLimits, Items, Op, Runner
from service.errors import (
    ClientGoneError,
    InferenceError,
    InvalidRequestError,
    NotReadyError,
    OverloadedError,
    QueueTimeoutError,
)
from service.metrics import ServiceMetrics

pytestmark = pytest.mark.anyio


class Recorder:
    """A runner (doubles its input) that remembers every batch it saw and can be held at a gate."""

    def __init__(self) -> None:
        self.batches: list[torch.Tensor] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> np.ndarray:
        self.entered.set()
        self.gate.wait(10)
        if torch.isnan(x).any():
            raise ValueError("NaN input")
        self.batches.append(x.clone())
        return (x * 2).numpy()  # [B, ...]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


def make_engine(
    runner: Runner, pool: ThreadPoolExecutor, metrics: ServiceMetrics | None = None, **limits: Any
) -> BatchEngine:
    settings = {"max_batch_size": 8, "max_wait_ms": 20.0, "max_queue_items": 1000, "max_queue_ms": 5000.0, **limits}
    engine = BatchEngine(
        "m",
        {Op.GENERATE: runner},
        EngineLimits(**settings),
        metrics or ServiceMetrics(),
        pool,
        2,
    )
    engine.start()
    return engine


def identity(a: np.ndarray) -> np.ndarray:
    return a.copy()


async def test_concurrent_requests_share_batches_and_each_gets_its_own_rows(pool: ThreadPoolExecutor) -> None:
    metrics = ServiceMetrics()
    runner = Recorder()
    engine = make_engine(runner, pool, metrics, max_batch_size=16, max_wait_ms=50.0)
    try:
        inputs = [torch.full((1, 3), float(i)) for i in range(16)]
        results = await asyncio.gather(*(engine.submit(Op.GENERATE, x, identity) for x in inputs))
    finally:
        engine.stop()
    for i, out in enumerate(results):
        assert out.shape == (1, 3) and (out == 2 * i).all()
    assert max(b.shape[0] for b in runner.batches) > 1
    assert sum(b.shape[0] for b in runner.batches) == 16
    assert metrics.registry.get_sample_value("wgan_items_total", {"model": "m", "op": "generate"}) == 16


class LabelledRecorder:
    """A runner of labelled items: each output row is its value plus 100 times its label; remembers the labels."""

    def __init__(self) -> None:
        self.labels: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> np.ndarray:
        assert labels is not None and labels.shape == (x.shape[0],)
        self.labels.append(labels.clone())
        return (x[:, 0] + 100 * labels).numpy()  # [B]


async def test_labels_ride_with_their_items_through_shared_and_spanning_batches(pool: ThreadPoolExecutor) -> None:
    runner = LabelledRecorder()
    engine = make_engine(runner, pool, max_batch_size=4, max_wait_ms=50.0)
    try:
        requests = [Items(torch.full((n, 1), float(i)), torch.arange(n) + 10 * i) for i, n in enumerate((1, 3, 6))]
        deferred = Deferred(2, lambda: Items(torch.full((2, 1), 7.0), torch.tensor([5.0, 6.0])))
        outs = await asyncio.gather(
            *(engine.submit(Op.GENERATE, r, identity) for r in requests), engine.submit(Op.GENERATE, deferred, identity)
        )
    finally:
        engine.stop()
    for i, (req, out) in enumerate(zip(requests, outs, strict=False)):
        assert req.labels is not None
        assert out.tolist() == (i + 100 * req.labels).tolist()
    assert outs[3].tolist() == [507.0, 607.0]
    assert [len(b) for b in runner.labels] == [4, 4, 4]  # 12 items: the 6-item request spans two batches
    assert any(len(set((b // 10).tolist())) > 1 for b in runner.labels), "some batch should mix requests"


async def test_a_request_larger_than_a_batch_spans_batches_in_order(pool: ThreadPoolExecutor) -> None:
    runner = Recorder()
    engine = make_engine(runner, pool, max_batch_size=4, max_wait_ms=0.0)
    try:
        x = torch.arange(10, dtype=torch.float32)[:, None]  # [10, 1]
        out = await engine.submit(Op.GENERATE, x, identity)
    finally:
        engine.stop()
    assert out[:, 0].tolist() == [2.0 * i for i in range(10)]
    assert [b.shape[0] for b in runner.batches] == [4, 4, 2]


async def test_one_failing_request_does_not_fail_the_others_in_its_batch(pool: ThreadPoolExecutor) -> None:
    runner = Recorder()
    runner.gate.clear()  # hold the first pass so the next three queue up into one batch
    engine = make_engine(runner, pool, max_batch_size=8, max_wait_ms=30.0)
    try:
        first = asyncio.ensure_future(engine.submit(Op.GENERATE, torch.ones(1, 2), identity))
        await asyncio.to_thread(runner.entered.wait, 5)
        good = [asyncio.ensure_future(engine.submit(Op.GENERATE, torch.full((1, 2), 3.0), identity)) for _ in range(2)]
        bad = asyncio.ensure_future(engine.submit(Op.GENERATE, torch.full((1, 2), float("nan")), identity))
        await asyncio.sleep(0.05)
        runner.gate.set()
        assert (await first == 2).all()
        for fut in good:
            assert (await fut == 6).all()
        with pytest.raises(InferenceError, match="forward pass failed"):
            await bad
    finally:
        engine.stop()


async def test_a_failing_postprocess_fails_only_its_request(pool: ThreadPoolExecutor) -> None:
    engine = make_engine(Recorder(), pool)

    def broken(_: np.ndarray) -> bytes:
        raise RuntimeError("encoder exploded")

    try:
        ok, failed = await asyncio.gather(
            engine.submit(Op.GENERATE, torch.ones(1, 1), identity),
            engine.submit(Op.GENERATE, torch.ones(1, 1), broken),
            return_exceptions=True,
        )
    finally:
        engine.stop()
    assert isinstance(ok, np.ndarray) and ok[0, 0] == 2
    assert isinstance(failed, InferenceError) and "encoding" in failed.message


async def test_a_full_queue_refuses_new_requests(pool: ThreadPoolExecutor) -> None:
    runner = Recorder()
    runner.gate.clear()
    engine = make_engine(runner, pool, max_batch_size=2, max_queue_items=4, max_wait_ms=0.0)
    try:
        running = asyncio.ensure_future(engine.submit(Op.GENERATE, torch.ones(2, 1), identity))
        await asyncio.to_thread(runner.entered.wait, 5)
        queued = asyncio.ensure_future(engine.submit(Op.GENERATE, torch.ones(3, 1), identity))
        await asyncio.sleep(0.01)
        assert engine.queue_items == 3
        with pytest.raises(OverloadedError, match="limit 4"):
            await engine.submit(Op.GENERATE, torch.ones(2, 1), identity)
        runner.gate.set()
        await running
        await queued
    finally:
        engine.stop()


async def test_an_item_past_its_deadline_gets_a_timeout_and_is_never_computed(pool: ThreadPoolExecutor) -> None:
    runner = Recorder()
    runner.gate.clear()
    engine = make_engine(runner, pool, max_batch_size=1, max_wait_ms=0.0, max_queue_ms=50.0)
    try:
        first = asyncio.ensure_future(engine.submit(Op.GENERATE, torch.ones(1, 1), identity))
        await asyncio.to_thread(runner.entered.wait, 5)
        late = asyncio.ensure_future(engine.submit(Op.GENERATE, torch.full((1, 1), 7.0), identity))
        await asyncio.sleep(0.15)  # well past the 50 ms deadline while the worker is busy
        runner.gate.set()
        await first
        with pytest.raises(QueueTimeoutError):
            await late
    finally:
        engine.stop()
    assert all((b != 7.0).all() for b in runner.batches)


async def test_a_client_that_goes_away_is_dropped_before_its_forward_pass(pool: ThreadPoolExecutor) -> None:
    runner = Recorder()
    runner.gate.clear()
    engine = make_engine(runner, pool, max_batch_size=1, max_wait_ms=0.0)
    gone = asyncio.Event()
    try:
        first = asyncio.ensure_future(engine.submit(Op.GENERATE, torch.ones(1, 1), identity))
        await asyncio.to_thread(runner.entered.wait, 5)
        abandoned = asyncio.ensure_future(
            engine.submit(Op.GENERATE, torch.full((1, 1), 5.0), identity, until_gone=gone.wait)
        )
        cancelled_task = asyncio.ensure_future(engine.submit(Op.GENERATE, torch.full((1, 1), 6.0), identity))
        await asyncio.sleep(0.01)
        gone.set()
        cancelled_task.cancel()
        with pytest.raises(ClientGoneError):
            await abandoned
        with pytest.raises(asyncio.CancelledError):
            await cancelled_task
        runner.gate.set()
        await first
        # A later request still runs: the dropped ones cost nothing.
        assert (await engine.submit(Op.GENERATE, torch.full((1, 1), 9.0), identity) == 18).all()
    finally:
        engine.stop()
    seen = torch.cat(runner.batches).flatten().tolist()
    assert 5.0 not in seen and 6.0 not in seen and seen == [1.0, 9.0]


async def test_stop_answers_queued_requests_and_refuses_new_ones(pool: ThreadPoolExecutor) -> None:
    runner = Recorder()
    runner.gate.clear()
    engine = make_engine(runner, pool, max_batch_size=1, max_wait_ms=0.0)
    first = asyncio.ensure_future(engine.submit(Op.GENERATE, torch.ones(1, 1), identity))
    await asyncio.to_thread(runner.entered.wait, 5)
    queued = asyncio.ensure_future(engine.submit(Op.GENERATE, torch.ones(1, 1), identity))
    await asyncio.sleep(0.01)
    stopping = asyncio.ensure_future(asyncio.to_thread(engine.stop))
    await asyncio.sleep(0.05)
    runner.gate.set()
    await stopping
    assert (await first == 2).all()  # the batch in flight finishes
    with pytest.raises(NotReadyError):
        await queued
    with pytest.raises(NotReadyError):
        await engine.submit(Op.GENERATE, torch.ones(1, 1), identity)


async def test_an_op_the_engine_lacks_is_refused(pool: ThreadPoolExecutor) -> None:
    engine = make_engine(Recorder(), pool)
    try:
        with pytest.raises(InferenceError, match="cannot score"):
            await engine.submit(Op.SCORE, torch.ones(1, 1), identity)
    finally:
        engine.stop()


async def test_deferred_inputs_are_built_on_the_worker_and_a_failing_build_fails_alone(
    pool: ThreadPoolExecutor,
) -> None:
    runner = Recorder()
    runner.gate.clear()
    engine = make_engine(runner, pool, max_batch_size=8)
    built_on: list[str] = []

    def build() -> torch.Tensor:
        built_on.append(threading.current_thread().name)
        return torch.full((2, 1), 4.0)

    def refuse() -> torch.Tensor:
        raise InvalidRequestError("these inputs cannot be made")

    try:
        first = asyncio.ensure_future(engine.submit(Op.GENERATE, torch.ones(1, 1), identity))
        await asyncio.to_thread(runner.entered.wait, 5)
        good = asyncio.ensure_future(engine.submit(Op.GENERATE, Deferred(2, build), identity))
        bad = asyncio.ensure_future(engine.submit(Op.GENERATE, Deferred(3, refuse), identity))
        await asyncio.sleep(0.02)
        runner.gate.set()
        await first
        assert (await good == 8).all()
        with pytest.raises(InvalidRequestError, match="cannot be made"):
            await bad
    finally:
        engine.stop()
    assert built_on == ["wgan-engine-m"]
    assert [b.shape[0] for b in runner.batches] == [1, 2]
