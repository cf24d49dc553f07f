"""The lean POST /v1/sample path answers exactly as the full app does: same bytes, same errors, same metrics,
same keys, drain and limits; it only takes the plain case and hands everything else over."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

import service.api.fast_path as fast_path
import service.api.routes.sample as sample_route
from models.latents import SEED_MAX
from service import create_app
from service.process.drain import Drain
from tests.service.app_client import FastPathCount, make_settings, serve_in_process, wait_ready
from tests.service.asgi_calls import body_once_open, never_sending, post_sample

pytestmark = pytest.mark.anyio

JSON = {"Content-Type": "application/json"}
PNG = {"Content-Type": "application/json", "Accept": "image/png"}

# (name, headers, body, answered on the lean path)
CASES: list[tuple[str, dict[str, str], bytes, bool]] = [
    ("seed", JSON, b'{"seed": 3}', True),
    ("seed and n", JSON, b'{"seed": 5, "n": 3}', True),
    ("seeds", JSON, b'{"seeds": [11, 12]}', True),
    ("latents", JSON, b'{"seed": 4, "truncation": 0.7, "return_latents": true, "format": "png"}', True),
    ("named model", JSON, b'{"model": "digits", "seed": 9, "format": null}', True),
    ("point model", JSON, b'{"model": "ring", "seed": 2, "n": 2}', True),
    ("raw png", PNG, b'{"seed": 6}', True),
    ("charset", {"Content-Type": "application/json; charset=utf-8"}, b'{"seed": 1}', True),
    ("over the image limit", JSON, b'{"seed": 1, "n": 65}', True),
    ("unknown model", JSON, b'{"model": "nope", "seed": 1}', True),
    ("raw png of two", PNG, b'{"seed": 1, "n": 2}', True),
    ("raw png with latents", PNG, b'{"seed": 1, "return_latents": true}', True),
    ("seed overflow", JSON, b'{"seed": %d, "n": 2}' % SEED_MAX, True),
    ("unknown field", JSON, b'{"seed": 1, "colour": "red"}', False),
    ("string seed", JSON, b'{"seed": "1"}', False),
    ("float n", JSON, b'{"seed": 1, "n": 2.0}', False),
    ("seed and seeds", JSON, b'{"seed": 1, "seeds": [2]}', False),
    ("negative n", JSON, b'{"seed": 1, "n": 0}', False),
    ("truncated json", JSON, b'{"seed": 1', False),
    ("not an object", JSON, b"[1, 2]", False),
    ("nan", JSON, b'{"seed": 1, "truncation": NaN}', False),
    ("huge integer", JSON, b'{"seed": 123456789012345678901234567890}', False),
    ("grid", JSON, b'{"seed": 1, "n": 4, "grid": true}', False),
    ("npy", JSON, b'{"seed": 1, "format": "npy"}', False),
    ("jpeg", JSON, b'{"seed": 1, "format": "jpeg"}', False),
    ("text/plain", {"Content-Type": "text/plain"}, b'{"seed": 1}', False),
    ("multipart", {"Content-Type": "multipart/form-data; boundary=x"}, b"--x--\r\n", False),
    ("no content type", {}, b'{"seed": 1}', False),
    ("empty body", JSON, b"", False),
    ("over the body limit", JSON, b'{"seeds": [%s]}' % b", ".join([b"1"] * 2000), False),
]


def request_metrics(text: str) -> dict[tuple[str, ...], float]:
    """Request counts and latency observations of /v1/sample and unmatched paths, plus items computed."""
    found: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in ("wgan_requests_total", "wgan_request_duration_seconds_count"):
                if s.labels["endpoint"] in ("/v1/sample", "unmatched"):
                    found[(s.name, s.labels["endpoint"], s.labels.get("status", ""))] = s.value
            elif s.name == "wgan_items_total":
                found[(s.name, s.labels["model"], s.labels["op"])] = s.value
    return found


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    return response.status_code, response.headers.multi_items(), response.content


async def test_every_body_gets_the_same_answer_and_the_same_metrics(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = FastPathCount(monkeypatch)
    drains = {True: Drain(), False: Drain()}
    async with AsyncExitStack() as stack:
        clients = {
            on: await stack.enter_async_context(
                serve_in_process(make_settings(models_dir, fast_path=on, max_body_bytes=4096), drains[on])
            )
            for on in (True, False)
        }
        statuses = []
        for name, headers, body, lean in CASES:
            before = count.value
            fast = await clients[True].post("/v1/sample", content=body, headers=headers)
            assert count.value - before == lean, name
            full = await clients[False].post("/v1/sample", content=body, headers=headers)
            assert count.value - before == lean, name  # the switch really turns it off
            assert comparable(fast) == comparable(full), name
            statuses.append(fast.status_code)
        # Successes, errors after validation and errors of the full app: the comparison covered each kind.
        assert {200, 400, 404, 406, 413, 415, 422} <= set(statuses)
        metrics = [request_metrics((await clients[on].get("/metrics")).text) for on in (True, False)]
        assert metrics[0] == metrics[1]
        assert metrics[0][("wgan_requests_total", "/v1/sample", "200")] == statuses.count(200)
        assert metrics[0][("wgan_requests_total", "unmatched", "413")] == 1
        assert all(drain.in_flight == 0 for drain in drains.values())


@pytest.mark.parametrize(
    ("authorization", "lean"),
    [
        (None, False),
        ("Bearer wrong-key", False),
        ("Basic Zmlyc3Qta2V5LTEyMw==", False),
        ("first-key-123", False),
        ("Bearer first-key-12", False),
        ("Bearer first-key-123", True),
        ("bearer second-key-456", True),
        ("Bearer  second-key-456 ", True),
    ],
)
async def test_api_keys_are_enforced(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, authorization: str | None, lean: bool
) -> None:
    count = FastPathCount(monkeypatch)
    headers = {**JSON, **({"Authorization": authorization} if authorization else {})}
    answers = []
    for on in (True, False):
        settings = make_settings(models_dir, fast_path=on, api_keys="first-key-123,second-key-456", warmup=False)
        async with serve_in_process(settings) as client:
            answers.append(await client.post("/v1/sample", content=b'{"seed": 8}', headers=headers))
    assert comparable(answers[0]) == comparable(answers[1])
    assert answers[0].status_code == (200 if lean else 401)
    assert count.value == lean


async def test_a_draining_server_refuses_the_same_way(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    count = FastPathCount(monkeypatch)
    answers = []
    for on in (True, False):
        drain = Drain()
        async with serve_in_process(make_settings(models_dir, fast_path=on, warmup=False), drain) as client:
            drain.begin()
            answers.append(await client.post("/v1/sample", json={"seed": 1}))
            assert drain.in_flight == 0
    assert comparable(answers[0]) == comparable(answers[1])
    assert answers[0].status_code == 503 and answers[0].json()["error"]["code"] == "shutting_down"
    assert count.value == 0


@pytest.mark.parametrize(("body", "status"), [(b'{"seed": 2}', 200), (b'{"seed": 2, "colour": "red"}', 422)])
async def test_a_request_begun_before_the_drain_is_answered_not_refused(
    models_dir: Path, body: bytes, status: int
) -> None:
    """Draining starts while the body is on its way: the request was in flight, so it is answered (the lean path
    answers it or hands it over still counted), and the drain waits for it."""
    answers = []
    for on in (True, False):
        drain = Drain()
        app = create_app(make_settings(models_dir, fast_path=on, warmup=False), drain)
        async with LifespanManager(app) as manager:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as c:
                await wait_ready(c)
                gate = asyncio.Event()
                call = asyncio.create_task(post_sample(manager.app, body_once_open(gate, body), len(body)))
                await asyncio.sleep(0.05)
                assert drain.in_flight == 1
                drain.begin()
                gate.set()
                answers.append(await call)
                assert drain.in_flight == 0
    assert answers[0] == answers[1]
    assert answers[0][0]["status"] == status


async def test_a_body_that_never_arrives_gets_the_same_408(models_dir: Path) -> None:
    answers = []
    for on in (True, False):
        settings = make_settings(models_dir, fast_path=on, request_read_timeout_s=0.2, warmup=False)
        app = create_app(settings)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                await wait_ready(client)
                answers.append(await post_sample(manager.app, never_sending, 20))
                metrics = request_metrics((await client.get("/metrics")).text)
                assert metrics[("wgan_requests_total", "unmatched", "408")] == 1
    assert answers[0] == answers[1]
    assert answers[0][0]["status"] == 408


async def test_the_lean_path_leaves_other_routes_alone(client: httpx.AsyncClient) -> None:
    # GET on the sample path and POST elsewhere are the full app's: 405 and 404 envelopes.
    assert (await client.get("/v1/sample")).json()["error"]["code"] == "method_not_allowed"
    assert (await client.post("/v1/sample/", json={"seed": 1})).status_code in (307, 404)
    assert (await client.post("/v1/interpolate", json={"points": [{"seed": 1}, {"seed": 2}], "steps": 2})).is_success


async def test_an_unexpected_failure_gets_the_same_500_envelope(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    # The lean path and the route both run `answer_sample`: break it under both names.
    monkeypatch.setattr(fast_path, "answer_sample", broken)
    monkeypatch.setattr(sample_route, "answer_sample", broken)
    answers = []
    for on in (True, False):
        app = create_app(make_settings(models_dir, fast_path=on, warmup=False))
        async with LifespanManager(app) as manager:
            # The full app answers, then re-raises to the server (which logs it): let the client see the answer.
            transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                await wait_ready(client)
                answers.append(await client.post("/v1/sample", json={"seed": 1}))
                metrics = request_metrics((await client.get("/metrics")).text)
                assert metrics[("wgan_requests_total", "/v1/sample", "500")] == 1
    assert comparable(answers[0]) == comparable(answers[1])
    assert answers[0].status_code == 500 and answers[0].json()["error"]["code"] == "internal_error"
    assert "a bug" not in answers[0].text and "RuntimeError: a bug" in caplog.text
