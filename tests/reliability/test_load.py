"""Load, nothing lost: seeded /v1/sample requests from a separate process at concurrency 128 against wgan-serve.

Every answer is its seeds' exact images or a 503 with Retry-After; nothing else, nothing hung, and the
server's RSS after the run is within 10 % of before. The small-queue variant makes 503s really happen.
CI runs 2,000 requests; `make reliability` runs 20,000 (marker `reliability_full`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.load_check import LoadPlan, assert_nothing_lost, load_run

SMALL_QUEUE = ("--max-queue-items", "8", "--max-batch-size", "8")


def test_load_every_answer_is_exact_or_503(models_dir: Path, tmp_path: Path) -> None:
    plan = LoadPlan(requests=2_000, concurrency=128, warm_up_requests=600)
    figures = load_run(models_dir, tmp_path, plan)
    assert_nothing_lost(figures, plan, tmp_path / "wgan-serve.log")


def test_a_small_queue_sheds_load_with_503_and_retry_after(models_dir: Path, tmp_path: Path) -> None:
    plan = LoadPlan(requests=800, concurrency=128, warm_up_requests=300, server_flags=SMALL_QUEUE)
    figures = load_run(models_dir, tmp_path, plan)
    assert_nothing_lost(figures, plan, tmp_path / "wgan-serve.log")
    assert figures["overloaded_503"] > 0 and figures["answered_correctly"] > 0, figures


@pytest.mark.reliability_full
def test_full_load_20000_requests(models_dir: Path, tmp_path: Path) -> None:
    plan = LoadPlan(requests=20_000, concurrency=128, warm_up_requests=2_000, max_seconds=900.0)
    figures = load_run(models_dir, tmp_path, plan)
    assert_nothing_lost(figures, plan, tmp_path / "wgan-serve.log")


@pytest.mark.reliability_full
def test_full_load_small_queue(models_dir: Path, tmp_path: Path) -> None:
    plan = LoadPlan(requests=5_000, concurrency=128, warm_up_requests=1_000, server_flags=SMALL_QUEUE)
    figures = load_run(models_dir, tmp_path, plan)
    assert_nothing_lost(figures, plan, tmp_path / "wgan-serve.log")
    assert figures["overloaded_503"] > 0 and figures["answered_correctly"] > 0, figures
