"""Schemathesis against wgan-serve's own OpenAPI document, over real HTTP: zero 5xx, zero responses outside the
declared schema, invalid input always refused with a 4xx. CI sends a few hundred cases per server; `make
reliability` sends over 1,000 (marker `reliability_full`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.processes import Replica
from tests.e2e.serve_process import start_serve
from tests.reliability.fuzzing import fuzz

ADMIN_KEY = "fuzz-admin-key-31e8"
API_KEY = "fuzz-api-key-77c0"
OPERATIONS = 9  # health, readiness, metrics, two model routes, sample, interpolate, score, admin reload


@pytest.fixture(scope="module", params=["open", "keyed"])
def server(request: pytest.FixtureRequest, models_dir: Path) -> Iterator[tuple[Replica, dict[str, str]]]:
    """Without API keys (the admin key sent) and with them (the API key sent, so admin calls get 401)."""
    flags = ["--torch-threads", "1", "--admin-key", ADMIN_KEY, "--max-images-per-sample", "16", "--max-frames", "32"]
    key = ADMIN_KEY
    if request.param == "keyed":
        flags += ["--api-keys", API_KEY]
        key = API_KEY
    log = models_dir.parent / f"fuzz-{request.param}.log"
    process = start_serve(models_dir, log, *flags)
    yield process, {"Authorization": f"Bearer {key}"}
    assert process.stop() == 0
    assert "Traceback" not in log.read_text()


def check(server: tuple[Replica, dict[str, str]], examples: int, at_least: int) -> None:
    replica, headers = server
    report = fuzz(replica.url, examples, headers)
    print(json.dumps({"fuzz": report.summary()}))
    assert report.failures == {}, "\n\n".join(f"{k}\n{v}" for k, v in report.failures.items())
    assert not any(status >= 500 for status in report.statuses)
    assert len(report.cases) == OPERATIONS and report.total >= at_least, report.summary()


def test_fuzz_the_openapi_document(server: tuple[Replica, dict[str, str]]) -> None:
    check(server, examples=25, at_least=200)


@pytest.mark.reliability_full
def test_fuzz_the_openapi_document_full(server: tuple[Replica, dict[str, str]]) -> None:
    check(server, examples=150, at_least=1000)
