"""Over real HTTP: clients that hang up while queued cost no forward pass, and a deadline gives 504, never a
late success. `wgan_items_total` (items computed by forward passes) is the witness."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.serve_process import start_serve
from tests.reliability.raw_http import request_bytes


def items_computed(url: str) -> float:
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)}
    return sum(
        s.value
        for s in families["wgan_items"].samples
        if s.name == "wgan_items_total" and s.labels == {"model": "digits", "op": "generate"}
    )


def requests_counted(url: str, status: str, endpoint: str = "/v1/sample") -> float:
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)}
    return sum(
        s.value
        for s in families["wgan_requests"].samples
        if s.name == "wgan_requests_total" and s.labels == {"endpoint": endpoint, "status": status}
    )


def server_errors_counted(url: str) -> float:
    """5xx answers counted on any endpoint but /readyz (503 while the models load)."""
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)}
    return sum(
        s.value
        for s in families["wgan_requests"].samples
        if s.name == "wgan_requests_total" and s.labels["status"].startswith("5") and s.labels["endpoint"] != "/readyz"
    )


POST_ROUTES = ("/v1/sample", "/v1/interpolate", "/v1/score", "/v1/admin/reload")


def test_a_client_that_hangs_up_mid_body_is_counted_499_on_its_route(models_dir: Path, tmp_path: Path) -> None:
    server = start_serve(models_dir, tmp_path / "wgan-serve.log", "--torch-threads", "1")
    try:
        for path in POST_ROUTES:
            for _ in range(2):
                head = {"Content-Type": "application/json", "Content-Length": "100"}
                with socket.create_connection(("127.0.0.1", server.port)) as sock:
                    sock.sendall(request_bytes("POST", path, head, b'{"seed": 1, '))  # 11 of the 100 bytes
                    time.sleep(0.05)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and requests_counted(server.url, "499", POST_ROUTES[-1]) < 2:
            time.sleep(0.05)
        for path in POST_ROUTES:
            assert requests_counted(server.url, "499", path) == 2, path
        assert server_errors_counted(server.url) == 0
        assert requests_counted(server.url, "500", "unmatched") == 0
    finally:
        assert server.stop() == 0


def test_clients_that_hang_up_while_queued_cost_no_forward_pass(models_dir: Path, tmp_path: Path) -> None:
    # A 1.5 s batching window: the requests sit in the queue while their clients leave.
    flags = ["--torch-threads", "1", "--max-batch-size", "4096", "--max-wait-ms", "1500"]
    server = start_serve(models_dir, tmp_path / "wgan-serve.log", *flags)
    try:
        before = items_computed(server.url)
        body = b'{"seed": 7, "n": 8}'
        head = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(10)]
        for sock in sockets:
            sock.sendall(request_bytes("POST", "/v1/sample", head, body))
        time.sleep(0.4)
        for sock in sockets:
            sock.close()  # 80 items queued, every client gone before the window closes
        time.sleep(2.0)
        assert items_computed(server.url) == before
        assert requests_counted(server.url, "499") == 10
        kept = httpx.post(f"{server.url}/v1/sample", json={"seed": 7, "n": 8}, timeout=30)
        assert kept.status_code == 200 and items_computed(server.url) == before + 8
    finally:
        assert server.stop() == 0


def test_an_expired_deadline_gives_504_and_nothing_is_computed(models_dir: Path, tmp_path: Path) -> None:
    # The batching window (2 s) outlasts the deadline (300 ms): every item expires before it could be planned.
    flags = ["--torch-threads", "1", "--max-batch-size", "4096", "--max-wait-ms", "2000", "--max-queue-ms", "300"]
    server = start_serve(models_dir, tmp_path / "wgan-serve.log", *flags)
    try:
        before = items_computed(server.url)
        started = time.monotonic()
        response = httpx.post(f"{server.url}/v1/sample", json={"seed": 1, "n": 4}, timeout=30)
        assert response.status_code == 504 and response.json()["error"]["code"] == "queue_timeout"
        assert time.monotonic() - started < 1.5  # answered at the deadline, not when the window closed
        time.sleep(2.5)
        assert items_computed(server.url) == before
    finally:
        assert server.stop() == 0


def test_under_load_a_deadline_never_turns_into_a_late_success(models_dir: Path, tmp_path: Path) -> None:
    # One item per forward pass and a 20 ms deadline: 128 concurrent requests cannot all make it.
    flags = ["--torch-threads", "1", "--max-batch-size", "1", "--max-queue-ms", "20"]
    server = start_serve(models_dir, tmp_path / "wgan-serve.log", *flags)
    try:
        before = items_computed(server.url)

        async def burst() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=128)
            async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
                return await asyncio.gather(*(client.post("/v1/sample", json={"seed": s}) for s in range(512)))

        responses = asyncio.run(burst())
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 504}, set(statuses)
        assert statuses.count(504) > 0 and statuses.count(200) > 0, statuses.count(504)
        assert all(r.json()["error"]["code"] == "queue_timeout" for r in responses if r.status_code == 504)
        assert all(r.json()["images"][0]["seed"] == s for s, r in enumerate(responses) if r.status_code == 200)
        # Exactly the answered images were computed: an expired request cost nothing and came back 504.
        assert items_computed(server.url) - before == statuses.count(200)
    finally:
        assert server.stop() == 0
