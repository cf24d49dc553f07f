"""SIGTERM under load: /readyz turns 503, new requests get a clean 503, requests in flight complete, and the
process exits 0 within a bounded time; past the drain timeout it still exits 0, on time."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.serve_process import start_serve

# A long batching window holds the in-flight requests in the queue for a known time after SIGTERM.
WINDOW_MS = 3000
# How long the server keeps serving after SIGTERM, /readyz at 503, before its listener closes.
DELAY_S = 0.5


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
             "--drain-timeout-s", "20", "--retry-after-s", "2", "--shutdown-delay-s", str(DELAY_S)]  # fmt: skip
    server = start_serve(models_dir, log, *flags)

    async def scenario() -> tuple[list[httpx.Response], httpx.Response, httpx.Response, str, float]:
        limits = httpx.Limits(max_connections=32)
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client,
            httpx.AsyncClient(base_url=server.url, timeout=5) as kept_open,
        ):
            assert (await kept_open.get("/healthz")).status_code == 200  # an idle keep-alive connection
            in_flight = [
                asyncio.create_task(client.post("/v1/sample", json={"seed": 10 * k, "n": 3})) for k in range(24)
            ]
            await asyncio.sleep(0.5)  # every request is in the queue, waiting for the window to close
            server.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            ready = await _poll_until_draining(server.url)  # at once, while the listener is still open
            await asyncio.sleep(DELAY_S + 0.3 - (time.monotonic() - signalled))
            refused = await kept_open.post("/v1/sample", json={"seed": 1})  # on the open connection: a 503
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as newcomer:
                try:
                    newcomer_outcome = f"answered {(await newcomer.get('/healthz')).status_code}"
                except httpx.ConnectError:
                    newcomer_outcome = "refused"
            answers = await asyncio.gather(*in_flight)
        return answers, ready, refused, newcomer_outcome, signalled

    answers, ready, refused, newcomer_outcome, signalled = asyncio.run(scenario())
    code = server.proc.wait(timeout=40)
    stopped_after = time.monotonic() - signalled
    text = log.read_text()
    assert ready.status_code == 503 and ready.json()["status"] == "draining"
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "shutting_down"
    assert refused.headers["retry-after"] == "2" and refused.headers["connection"] == "close"
    assert newcomer_outcome == "refused"  # the listener closed after the delay
    assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers if a.status_code != 200]
    for k, answer in enumerate(answers):
        assert [i["seed"] for i in answer.json()["images"]] == [10 * k, 10 * k + 1, 10 * k + 2]
        assert answer.headers["connection"] == "close"  # answered after the listener closed
    assert code == 0, text[-3000:]
    assert stopped_after < WINDOW_MS / 1000 + 10, stopped_after
    assert "drained: no request in flight" in text and "Traceback" not in text


async def _keep_alive_load(url: str, n: int, connections: int, stop: asyncio.Event) -> dict[str, int]:
    """`connections` keep-alive clients sending `/v1/sample` (n images) until refused or stopped; outcomes counted."""
    outcomes: dict[str, int] = {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient, first_seed: int) -> None:
        seed = first_seed
        while not stop.is_set():
            try:
                response = await client.post("/v1/sample", json={"seed": seed, "n": n})
            except httpx.ConnectError:
                outcomes["refused"] = outcomes.get("refused", 0) + 1
                return  # the listener is closed: the server is going away
            except httpx.HTTPError as exc:
                key = f"no answer: {type(exc).__name__}"
                outcomes[key] = outcomes.get(key, 0) + 1
                continue
            if response.status_code == 200 and [i["seed"] for i in response.json()["images"]] == list(
                range(seed, seed + n)
            ):
                outcomes["200"] = outcomes.get("200", 0) + 1
            elif response.status_code == 503 and "retry-after" in response.headers:
                outcomes["503"] = outcomes.get("503", 0) + 1
            else:
                key = f"other: {response.status_code}"
                outcomes[key] = outcomes.get(key, 0) + 1
            seed += 1

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client, 1_000_000 * k) for k in range(connections)))
    return outcomes


def _sigterm_under_keep_alive_load(models_dir: Path, log: Path, n: int, load_s: float) -> dict[str, int]:
    server = start_serve(models_dir, log, "--torch-threads", "1", "--drain-timeout-s", "20")

    async def scenario() -> dict[str, int]:
        stop = asyncio.Event()
        load = asyncio.create_task(_keep_alive_load(server.url, n, 128, stop))
        await asyncio.sleep(load_s)
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.wait({load}, timeout=30)
        stop.set()
        return await load

    outcomes = asyncio.run(scenario())
    code = server.proc.wait(timeout=40)
    text = log.read_text()
    assert code == 0 and "Traceback" not in text, text[-3000:]
    return outcomes


def _assert_nothing_lost(outcomes: dict[str, int]) -> None:
    assert set(outcomes) <= {"200", "503", "refused"}, outcomes  # never a connection closed without an answer
    assert outcomes.get("200", 0) > 0 and outcomes.get("refused", 0) > 0, outcomes


@pytest.mark.parametrize("n", [1, 32])
def test_sigterm_under_keep_alive_load_answers_every_request(models_dir: Path, tmp_path: Path, n: int) -> None:
    outcomes = _sigterm_under_keep_alive_load(models_dir, tmp_path / "wgan-serve.log", n, load_s=1.5)
    print(json.dumps({"sigterm_under_load": {"n": n, **outcomes}}))
    _assert_nothing_lost(outcomes)


@pytest.mark.reliability_full
@pytest.mark.parametrize("n", [1, 32])
def test_sigterm_under_keep_alive_load_repeatedly(models_dir: Path, tmp_path: Path, n: int) -> None:
    for attempt in range(5):
        outcomes = _sigterm_under_keep_alive_load(models_dir, tmp_path / f"wgan-serve-{attempt}.log", n, load_s=3.0)
        print(json.dumps({"sigterm_under_load": {"n": n, "attempt": attempt, **outcomes}}))
        _assert_nothing_lost(outcomes)


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
