"""The batch planner on its own: size and time limits, spanning, sharing, expired and cancelled jobs."""

from __future__ import annotations

import pytest

from service.engine.planner import BatchPlanner, QueuedJob


def job(name: str, n: int, at: float = 0.0, deadline: float = 100.0) -> QueuedJob[str]:
    return QueuedJob(payload=name, n_items=n, enqueued_at=at, deadline=deadline)


def layout(plan) -> list[tuple[str, int, int]]:
    return [(s.job.payload, s.start, s.stop) for s in plan.slices]


def test_empty_queue_has_nothing_to_wait_for() -> None:
    planner: BatchPlanner[str] = BatchPlanner(max_batch_size=4, max_wait_s=0.01)
    assert planner.wait_time(now=0.0) is None
    assert layout(planner.next_batch(now=0.0)) == []


def test_waits_up_to_max_wait_after_the_first_item() -> None:
    planner: BatchPlanner[str] = BatchPlanner(max_batch_size=8, max_wait_s=0.010)
    planner.push(job("a", 1, at=1.000))
    assert planner.wait_time(now=1.000) == pytest.approx(0.010)
    assert planner.wait_time(now=1.004) == pytest.approx(0.006)
    planner.push(job("b", 2, at=1.004))
    # The clock runs from the oldest item, not the newest.
    assert planner.wait_time(now=1.006) == pytest.approx(0.004)
    assert planner.wait_time(now=1.010) == 0.0
    assert layout(planner.next_batch(now=1.010)) == [("a", 0, 1), ("b", 0, 2)]
    assert planner.pending_items == 0 and len(planner) == 0


def test_a_full_batch_is_ready_at_once() -> None:
    planner: BatchPlanner[str] = BatchPlanner(max_batch_size=4, max_wait_s=10.0)
    planner.push(job("a", 3))
    assert planner.wait_time(now=0.0) == pytest.approx(10.0)
    planner.push(job("b", 1))
    assert planner.wait_time(now=0.0) == 0.0


def test_batch_never_exceeds_max_batch_size_and_a_request_spans_batches() -> None:
    planner: BatchPlanner[str] = BatchPlanner(max_batch_size=4, max_wait_s=0.0)
    planner.push(job("big", 10))
    planner.push(job("small", 1))
    first = planner.next_batch(now=0.0)
    assert layout(first) == [("big", 0, 4)] and first.size == 4
    # The rest of a job that has started is ready immediately, whatever the wait.
    assert planner.wait_time(now=0.0) == 0.0
    assert layout(planner.next_batch(now=0.0)) == [("big", 4, 8)]
    assert layout(planner.next_batch(now=0.0)) == [("big", 8, 10), ("small", 0, 1)]
    assert planner.wait_time(now=0.0) is None


def test_many_requests_share_one_batch_in_arrival_order() -> None:
    planner: BatchPlanner[str] = BatchPlanner(max_batch_size=64, max_wait_s=0.0)
    for i in range(64):
        planner.push(job(f"r{i}", 1, at=i * 1e-4))
    plan = planner.next_batch(now=1.0)
    assert [s.job.payload for s in plan.slices] == [f"r{i}" for i in range(64)]
    assert plan.size == 64


def test_expired_jobs_are_reported_and_never_planned() -> None:
    planner: BatchPlanner[str] = BatchPlanner(max_batch_size=4, max_wait_s=0.0)
    planner.push(job("late", 2, deadline=0.5))
    planner.push(job("fine", 2, deadline=5.0))
    plan = planner.next_batch(now=1.0)
    assert [j.payload for j in plan.expired] == ["late"]
    assert layout(plan) == [("fine", 0, 2)]
    assert planner.pending_items == 0


def test_an_expired_head_makes_the_queue_ready_so_it_is_answered_promptly() -> None:
    planner: BatchPlanner[str] = BatchPlanner(max_batch_size=4, max_wait_s=10.0)
    planner.push(job("a", 1, at=0.0, deadline=0.2))
    assert planner.wait_time(now=0.0) == pytest.approx(0.2)
    assert planner.wait_time(now=0.3) == 0.0
    plan = planner.next_batch(now=0.3)
    assert [j.payload for j in plan.expired] == ["a"] and plan.slices == []


def test_the_rest_of_a_spanning_job_is_not_computed_after_its_deadline() -> None:
    planner: BatchPlanner[str] = BatchPlanner(max_batch_size=2, max_wait_s=0.0)
    planner.push(job("span", 4, deadline=1.0))
    assert layout(planner.next_batch(now=0.5)) == [("span", 0, 2)]
    plan = planner.next_batch(now=1.5)
    assert plan.slices == [] and [j.payload for j in plan.expired] == ["span"]
    assert planner.pending_items == 0


def test_cancelled_jobs_are_skipped_and_free_their_budget() -> None:
    planner: BatchPlanner[str] = BatchPlanner(max_batch_size=3, max_wait_s=0.0)
    gone = job("gone", 2)
    planner.push(job("a", 1))
    planner.push(gone)
    planner.push(job("b", 2))
    gone.cancelled = True
    plan = planner.next_batch(now=0.0)
    assert layout(plan) == [("a", 0, 1), ("b", 0, 2)]
    assert [j.payload for j in plan.cancelled] == ["gone"]
    assert planner.pending_items == 0


def test_a_cancelled_head_is_collected_without_waiting() -> None:
    planner: BatchPlanner[str] = BatchPlanner(max_batch_size=8, max_wait_s=5.0)
    head = job("gone", 1)
    planner.push(head)
    head.cancelled = True
    assert planner.wait_time(now=0.0) == 0.0
    plan = planner.next_batch(now=0.0)
    assert plan.slices == [] and plan.cancelled == [head]


def test_a_cancelled_spanning_job_stops_after_the_batch_in_flight() -> None:
    planner: BatchPlanner[str] = BatchPlanner(max_batch_size=2, max_wait_s=0.0)
    span = job("span", 6)
    planner.push(span)
    planner.push(job("next", 1))
    assert layout(planner.next_batch(now=0.0)) == [("span", 0, 2)]
    span.cancelled = True
    plan = planner.next_batch(now=0.0)
    assert layout(plan) == [("next", 0, 1)] and plan.cancelled == [span]
    assert planner.pending_items == 0


def test_pending_items_counts_unplanned_items_only() -> None:
    planner: BatchPlanner[str] = BatchPlanner(max_batch_size=3, max_wait_s=0.0)
    planner.push(job("a", 5))
    planner.push(job("b", 2))
    assert planner.pending_items == 7
    planner.next_batch(now=0.0)
    assert planner.pending_items == 4
    drained = planner.drain()
    assert [j.payload for j in drained] == ["a", "b"] and planner.pending_items == 0


@pytest.mark.parametrize(("size", "wait"), [(0, 0.0), (-1, 0.0), (4, -0.1)])
def test_invalid_limits_are_refused(size: int, wait: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        BatchPlanner(max_batch_size=size, max_wait_s=wait)


def test_a_job_needs_items() -> None:
    with pytest.raises(ValueError, match="at least one item"):
        job("empty", 0)
