"""SIGTERM under load: /readyz turns 503, new requests get a clean 503, requests in flight complete, and the
process exits 0 within a bounded time; past the drain timeout it still exits 0, on time."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.serve_process import start_serve
from tests.reliability.raw_http import RawResponse, read_response, request_bytes

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


# Shutdowns per value of n. While uvicorn's keep-alive timer still closed idle connections during the drain, one
# shutdown in four at n = 32 and one in ten at n = 1 lost a request or more, each written onto a connection the
# timer closed as its client reused it (docs/operations.md, Reliability): three shutdowns per n catch a return of
# that in about two runs in three; the late-reader test below catches it every time.
SHUTDOWNS = 3


def _assert_nothing_lost(outcomes: dict[str, int]) -> None:
    """Every request got 200 with its images, or 503 with `Retry-After`, or its connection was refused."""
    assert set(outcomes) <= {"200", "503", "refused"}, outcomes
    assert outcomes.get("200", 0) > 0 and outcomes.get("refused", 0) > 0, outcomes


@pytest.mark.parametrize("n", [1, 32])
def test_sigterm_under_keep_alive_load_answers_every_request(models_dir: Path, tmp_path: Path, n: int) -> None:
    for attempt in range(SHUTDOWNS):
        outcomes = _sigterm_under_keep_alive_load(models_dir, tmp_path / f"wgan-serve-{attempt}.log", n, load_s=1.5)
        print(json.dumps({"sigterm_under_load": {"n": n, "attempt": attempt, **outcomes}}))
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


def _next_request(
    port: int, sock: socket.socket | None, answer: RawResponse | None
) -> tuple[socket.socket | None, str]:
    """Where a well-behaved keep-alive client sends its next request: the same connection unless the last answer
    said `Connection: close`, else a new one (None with "refused" when the listener is closed)."""
    if sock is not None and answer is not None and answer.headers.get("connection", "").lower() != "close":
        return sock, "kept"
    if sock is not None:
        sock.close()
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=10), "new"
    except ConnectionRefusedError:
        return None, "refused"


def _outcome(answer: RawResponse | None) -> str:
    if answer is None:
        return "closed without an answer"
    if answer.status == 503 and "retry-after" in answer.headers:
        return "503"
    return str(answer.status)


def test_requests_arriving_on_open_connections_while_the_drain_ends_are_answered(
    models_dir: Path, tmp_path: Path
) -> None:
    """The race of a keep-alive shutdown, made deterministic: a request whose head is still arriving when the last
    request in flight is answered (the moment idle connections get closed), the next request of the client that got
    that last answer, and a request arriving whole on an idle connection after the listener closed. Each is
    answered (200, or 503 with Retry-After) or its connection refused; none is met by a closed connection.
    Before the shutdown order of `service.process.uvicorn_server`, the first was cut off every time."""
    log = tmp_path / "wgan-serve.log"
    flags = ["--torch-threads", "1", "--max-batch-size", "4096", "--max-wait-ms", "800", "--drain-timeout-s", "20"]
    server = start_serve(models_dir, log, *flags)
    sample = request_bytes("POST", "/v1/sample", {"Content-Type": "application/json", "Content-Length": "10"})
    health = request_bytes("GET", "/healthz", {})
    head_start, head_rest = sample[:20], sample[20:] + b'{"seed":7}'
    connections = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(4)]
    slow, last, idle, pipelined = connections
    try:
        for sock in connections:  # three open keep-alive connections
            sock.sendall(health)
            first = read_response(sock)
            assert first is not None and first.status == 200 and first.headers.get("connection") != "close"
        last.sendall(sample.replace(b"Content-Length: 10", b"Content-Length: 11") + b'{"seed":42}')
        time.sleep(0.2)  # in the queue, held there by the batching window
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # draining: the request in flight still holds the drain open
        slow.sendall(head_start)  # a request begins to arrive ...
        idle.sendall(sample.replace(b"Content-Length: 10", b"Content-Length: 11") + b'{"seed":43}')
        idle_answer = read_response(idle)  # arriving whole on an open connection, the listener closed
        pipelined.sendall(health + sample.replace(b"Content-Length: 10", b"Content-Length: 11") + b'{"seed":45}')
        pipelined_answer = read_response(pipelined)  # two requests in one write: the first is answered ...
        pipelined_after = read_response(pipelined)
        last_answer = read_response(last)  # the last request in flight: its answer ends the drain
        assert last_answer is not None and last_answer.status == 200, last_answer
        after_last, how = _next_request(server.port, last, last_answer)
        after_last_outcome = "refused"
        if after_last is not None:  # sent at once, as the server closes idle connections
            after_last.sendall(sample.replace(b"Content-Length: 10", b"Content-Length: 11") + b'{"seed":44}')
            after_last_outcome = _outcome(read_response(after_last))
            after_last.close()
        time.sleep(0.7)  # ... and ends well after the drain finished and idle connections were closed
        try:
            slow.sendall(head_rest)
            slow_answer = read_response(slow)
        except (BrokenPipeError, ConnectionResetError):
            slow_answer = None
    finally:
        for sock in connections:
            sock.close()
    code = server.proc.wait(timeout=30)
    text = log.read_text()
    assert _outcome(slow_answer) in {"200", "503"}, (slow_answer, text[-2000:])
    assert _outcome(idle_answer) in {"200", "503"}, idle_answer
    # ... with `Connection: close`, after which the connection closes: RFC 9112 (9.3.2) has the client retry a
    # pipelined request left unanswered that way, and the server never began it.
    assert _outcome(pipelined_answer) in {"200", "503"}, pipelined_answer
    assert pipelined_answer is not None and pipelined_answer.headers.get("connection") == "close"
    assert pipelined_after is None or _outcome(pipelined_after) in {"200", "503"}, pipelined_after
    assert after_last_outcome in {"200", "503", "refused"}, (how, after_last_outcome)
    assert code == 0 and "Traceback" not in text, text[-3000:]


def test_a_client_that_reads_its_last_answer_late_still_gets_an_answer_while_draining(
    models_dir: Path, tmp_path: Path
) -> None:
    """A client stops using a keep-alive connection after its own keep-alive timeout, counted from when it read the
    last answer; a busy client reads it late. Here the client sends its next request a little after the server's
    keep-alive timeout, counted from the server's write, while the server drains: it is answered 503 with
    `Retry-After`, not met by a connection the server has just closed."""
    log = tmp_path / "wgan-serve.log"
    flags = ["--torch-threads", "1", "--keep-alive-timeout-s", "2", "--drain-timeout-s", "5"]
    server = start_serve(models_dir, log, *flags)
    sample = request_bytes("POST", "/v1/sample", {"Content-Type": "application/json", "Content-Length": "10"})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request_bytes("GET", "/healthz", {}))
        first = read_response(sock)
        answered = time.monotonic()
        assert first is not None and first.status == 200 and first.headers.get("connection") != "close"
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(2.7 - (time.monotonic() - answered))  # past the keep-alive timeout, as counted by the server
        try:
            sock.sendall(sample + b'{"seed":7}')
            late = read_response(sock)
        except (BrokenPipeError, ConnectionResetError):
            late = None
    code = server.proc.wait(timeout=30)
    text = log.read_text()
    assert _outcome(late) == "503", late
    assert late is not None and late.headers.get("connection") == "close"
    assert time.monotonic() - answered < 8
    assert code == 0 and "Traceback" not in text, text[-3000:]
