"""SIGTERM under load: /readyz turns 503, new requests get a clean 503, requests in flight complete, and the
process exits 0 within a bounded time; past the drain timeout it still exits 0, on time."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx

from tests.e2e.serve_process import start_serve

# A long batching window holds the in-flight requests in the queue for a known time after SIGTERM.
WINDOW_MS = 3000


async def _poll_until_draining(url: str, timeout_s: float = 2.0) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=url, timeout=5) as probe:
        while True:
            ready = await probe.get("/readyz")
            if ready.status_code == 503 or time.monotonic() > deadline:
                return ready
            await asyncio.sleep(0.02)


def test_sigterm_drains_in_flight_requests_and_refuses_new_ones(models_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "wgan-serve.log"
    flags = ["--torch-threads", "1", "--max-batch-size", "4096", "--max-wait-ms", str(WINDOW_MS),
             "--drain-timeout-s", "20", "--retry-after-s", "2"]  # fmt: skip
    server = start_serve(models_dir, log, *flags)

    async def scenario() -> tuple[list[httpx.Response], httpx.Response, httpx.Response, float]:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
            in_flight = [
                asyncio.create_task(client.post("/v1/sample", json={"seed": 10 * k, "n": 3})) for k in range(24)
            ]
            await asyncio.sleep(0.5)  # every request is in the queue, waiting for the window to close
            server.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            ready = await _poll_until_draining(server.url)
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as newcomer:
                refused = await newcomer.post("/v1/sample", json={"seed": 1})
            answers = await asyncio.gather(*in_flight)
        return answers, ready, refused, signalled

    answers, ready, refused, signalled = asyncio.run(scenario())
    code = server.proc.wait(timeout=40)
    stopped_after = time.monotonic() - signalled
    text = log.read_text()
    assert ready.status_code == 503 and ready.json()["status"] == "draining"
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "shutting_down"
    assert refused.headers["retry-after"] == "2" and refused.headers["connection"] == "close"
    assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers if a.status_code != 200]
    for k, answer in enumerate(answers):
        assert [i["seed"] for i in answer.json()["images"]] == [10 * k, 10 * k + 1, 10 * k + 2]
    assert code == 0, text[-3000:]
    assert stopped_after < WINDOW_MS / 1000 + 10, stopped_after
    assert "drained: no request in flight" in text and "Traceback" not in text


def test_past_the_drain_timeout_the_process_still_exits_0_in_time(models_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "wgan-serve.log"
    flags = ["--torch-threads", "1", "--max-batch-size", "4096", "--max-wait-ms", "10000", "--drain-timeout-s", "1"]
    server = start_serve(models_dir, log, *flags)

    async def scenario() -> tuple[int | str, float]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            stuck = asyncio.create_task(client.post("/v1/sample", json={"seed": 1}))
            await asyncio.sleep(0.5)
            server.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            try:
                outcome: int | str = (await stuck).status_code
            except httpx.HTTPError as exc:
                # The connection closed under it. docs/operations.md promises a 503 past the drain timeout, not a
                # dropped connection, so this fails the assertion below; kept as text to say what happened.
                outcome = f"no answer: {exc!r}"
        return outcome, signalled

    outcome, signalled = asyncio.run(scenario())
    code = server.proc.wait(timeout=30)
    assert code == 0, log.read_text()[-3000:]
    assert time.monotonic() - signalled < 8
    assert outcome == 503, outcome
    assert "drain timeout: 1 request(s) still in flight; answering them 503" in log.read_text()
    assert "Traceback" not in log.read_text()
