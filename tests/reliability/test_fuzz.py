"""Schemathesis against wgan-serve's own OpenAPI document, over real HTTP: zero 5xx, zero responses outside the
declared schema, invalid input always refused with a 4xx. CI sends a few hundred random cases per server; `make
reliability` sends over 1,000 (marker `reliability_full`). Schemathesis' coverage phase (each boundary, each
required part left out, each type and enum swapped, about 450 cases per server) runs in both, on a server with
and without API keys and on one whose default model is class-conditional."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.processes import Replica
from tests.e2e.serve_process import start_serve
from tests.reliability.fuzzing import FuzzReport, cover, fuzz

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


def check(report: FuzzReport, at_least: int, figure: str = "fuzz") -> None:
    print(json.dumps({figure: report.summary()}))
    assert report.failures == {}, "\n\n".join(f"{k}\n{v}" for k, v in report.failures.items())
    assert not any(status >= 500 for status in report.statuses)
    assert len(report.cases) == OPERATIONS and report.total >= at_least, report.summary()


def test_fuzz_the_openapi_document(server: tuple[Replica, dict[str, str]]) -> None:
    replica, headers = server
    check(fuzz(replica.url, 25, headers), at_least=200)


@pytest.mark.reliability_full
def test_fuzz_the_openapi_document_full(server: tuple[Replica, dict[str, str]]) -> None:
    replica, headers = server
    check(fuzz(replica.url, 150, headers), at_least=1000)


def test_the_coverage_phase_of_the_openapi_document(server: tuple[Replica, dict[str, str]]) -> None:
    replica, headers = server
    report = cover(replica.url, headers)
    check(report, at_least=400, figure="coverage")
    # Its valid cases reach the models: each bound of a sample or a walk is served, not refused for a reason
    # the check then skips (the document's example walk is by seed, so its latents are never the wrong length).
    assert report.answered["POST /v1/sample"] >= 25 and report.answered["POST /v1/interpolate"] >= 20, report.summary()


@pytest.fixture(scope="module")
def conditional_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_conditional_checkpoint: Path
) -> Iterator[tuple[Replica, dict[str, str]]]:
    """A class-conditional model as the default: requests without `model` reach its label handling."""
    folder = tmp_path_factory.mktemp("fuzz_conditional")
    shutil.copy(tiny_conditional_checkpoint, folder / "labelled.safetensors")
    flags = ["--torch-threads", "1", "--admin-key", ADMIN_KEY, "--max-images-per-sample", "16", "--max-frames", "32"]
    log = folder.parent / "fuzz-conditional.log"
    process = start_serve(folder, log, *flags)
    yield process, {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert process.stop() == 0
    assert "Traceback" not in log.read_text()


def test_the_coverage_phase_on_a_conditional_model(conditional_server: tuple[Replica, dict[str, str]]) -> None:
    replica, headers = conditional_server
    check(cover(replica.url, headers), at_least=400, figure="coverage")
