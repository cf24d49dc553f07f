"""The OpenAPI document of a real wgan-serve says what the server accepts: each request the server refuses for
its shape is one the document refuses too, and the admin route of a server without an admin key promises no
header that could unlock it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]  # installed with schemathesis, no stubs
import pytest

from tests.deploy.processes import Replica
from tests.e2e.serve_process import start_serve


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[Replica]:
    process = start_serve(models_dir, models_dir.parent / "schema-contract.log", "--torch-threads", "1")
    yield process
    assert process.stop() == 0


def body_schema(spec: dict[str, Any], path: str, media: str) -> jsonschema.Draft202012Validator:
    schema = spec["paths"][path]["post"]["requestBody"]["content"][media]["schema"]
    return jsonschema.Draft202012Validator({**schema, "components": spec["components"]})


REFUSED_JSON = [
    ("/v1/sample", {"seed": 1, "seeds": [1, 2], "n": 2}),
    ("/v1/sample", {"label": 1, "labels": [1]}),
    ("/v1/sample", {"labels": []}),
    ("/v1/sample", {"label": True}),
    ("/v1/interpolate", {"points": [{"seed": 1, "label": 1.5}, {"seed": 2}]}),
    ("/v1/score", {"images": ["AAAA"], "labels": [[1]]}),
    ("/v1/sample", {"seeds": [1, 2], "n": 2}),
    ("/v1/interpolate", {"points": [{}, {}]}),
    ("/v1/interpolate", {"points": [{"seed": 1, "latent": [0.5]}, {"seed": 2}]}),
    ("/v1/score", {"images": [""]}),
    ("/v1/score", {"images": ["AAAA"], "points": [[0.0, 0.0]]}),
    ("/v1/score", {}),
    # No model has a point of no coordinates or more than 64, or a latent of more than 4096 numbers.
    ("/v1/score", {"points": [[]]}),
    ("/v1/score", {"points": [[0.0] * 65]}),
    ("/v1/interpolate", {"points": [{"latent": [0.0] * 4097}, {"seed": 2}]}),
    # A grid is one PNG, without latents.
    ("/v1/sample", {"seeds": [1, 2], "grid": True, "format": "jpeg"}),
    ("/v1/sample", {"seeds": [1, 2], "grid": True, "format": "json"}),
    ("/v1/sample", {"seeds": [1, 2], "grid": True, "return_latents": True}),
]


@pytest.mark.parametrize(("path", "body"), REFUSED_JSON, ids=[f"{p}-{i}" for i, (p, _) in enumerate(REFUSED_JSON)])
def test_what_the_server_refuses_the_document_refuses(server: Replica, path: str, body: dict[str, Any]) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert not body_schema(spec, path, "application/json").is_valid(body), body
    response = httpx.post(f"{server.url}{path}", json=body, timeout=30)
    assert 400 <= response.status_code < 500, response.text


def test_what_the_document_allows_is_served(server: Replica) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    for path, body in [
        ("/v1/sample", {"seeds": [1, 2], "seed": None, "n": None}),
        ("/v1/sample", {"seeds": [1, 2], "label": None, "labels": None}),
        ("/v1/sample", {"seeds": [1, 2], "grid": True, "format": "png", "return_latents": False}),
        ("/v1/sample", {"seeds": [1, 2], "grid": False, "format": "jpeg", "return_latents": True}),
        ("/v1/interpolate", {"points": [{"seed": 1, "latent": None}, {"seed": 2}], "steps": 3}),
    ]:
        assert body_schema(spec, path, "application/json").is_valid(body), body
        assert httpx.post(f"{server.url}{path}", json=body, timeout=30).status_code == 200, body


def test_multipart_score_parts_are_stated_exactly(server: Replica) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    form = body_schema(spec, "/v1/score", "multipart/form-data")
    assert not form.is_valid({"file": []}) and not form.is_valid({"model": "digits"})
    assert not form.is_valid({"file": ["x"], **{f"f{i}": "v" for i in range(9)}})
    no_file = httpx.post(f"{server.url}/v1/score", data={"model": "digits"}, files={"other": ("a", b"", "text/plain")})
    assert no_file.status_code in (400, 422)
    too_many = httpx.post(f"{server.url}/v1/score", data={f"f{i}": "v" for i in range(9)}, files={"file": b"x"})
    assert too_many.status_code in (400, 422)


def test_without_an_admin_key_the_admin_route_requires_no_header_and_answers_403(server: Replica) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    operation = spec["paths"]["/v1/admin/reload"]["post"]
    assert "security" not in operation and "403" in operation["responses"]
    response = httpx.post(f"{server.url}/v1/admin/reload")
    assert response.status_code == 403 and response.json()["error"]["code"] == "admin_disabled"


def test_whole_numbers_are_integers_as_the_document_says_and_nothing_else_is(server: Replica) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    sample = body_schema(spec, "/v1/sample", "application/json")
    assert sample.is_valid({"seeds": [4897.0, 3]})  # JSON Schema counts 4897.0 as an integer ...
    answer = httpx.post(f"{server.url}/v1/sample", json={"seeds": [4897.0, 3], "format": "npy"}, timeout=30)
    assert answer.status_code == 200, answer.text  # ... and so does the server
    assert [i["seed"] for i in answer.json()["images"]] == [4897, 3]
    walk = {"points": [{"seed": 1.0}, {"seed": 2}], "steps": 3.0}
    assert httpx.post(f"{server.url}/v1/interpolate", json=walk, timeout=30).status_code == 200
    for refused in ({"seed": 1.5}, {"seed": "1"}, {"n": True}, {"seeds": [1.0, 2.5]}):
        assert not sample.is_valid(refused), refused
        response = httpx.post(f"{server.url}/v1/sample", json=refused, timeout=30)
        assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error", refused


def test_the_documents_limits_are_the_servers_settings(models_dir: Path) -> None:
    flags = ["--torch-threads", "1", "--max-images-per-sample", "5", "--max-frames", "7"]
    replica = start_serve(models_dir, models_dir.parent / "schema-limits.log", *flags, "--max-images-per-score", "3")
    try:
        spec = httpx.get(f"{replica.url}/openapi.json").json()
        sample = body_schema(spec, "/v1/sample", "application/json")
        assert sample.is_valid({"n": 5}) and not sample.is_valid({"n": 6})
        assert not sample.is_valid({"seeds": list(range(6))}) and not sample.is_valid({"labels": [0] * 6})
        assert sample.is_valid({"labels": [0] * 5})
        assert not sample.is_valid({"seed": 2**63})  # one above the largest seed, exactly
        assert httpx.post(f"{replica.url}/v1/sample", json={"n": 6}).status_code == 422
        walk = body_schema(spec, "/v1/interpolate", "application/json")
        assert walk.is_valid({"points": [{"seed": 1}, {"seed": 2}], "steps": 7})
        assert not walk.is_valid({"points": [{"seed": 1}, {"seed": 2}], "steps": 8})
        assert not walk.is_valid({"points": [{"seed": i} for i in range(8)]})
        score = body_schema(spec, "/v1/score", "application/json")
        assert not score.is_valid({"points": [[0.0, 0.0]] * 4}) and score.is_valid({"points": [[0.0, 0.0]] * 3})
        assert not score.is_valid({"images": ["AAAA"], "labels": [0] * 4})
        form = body_schema(spec, "/v1/score", "multipart/form-data")
        assert not form.is_valid({"file": ["x"] * 4}) and not form.is_valid({"file": ["x"], "label": ["1"] * 4})
    finally:
        assert replica.stop() == 0


@pytest.fixture(scope="module")
def conditional_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_conditional_checkpoint: Path
) -> Iterator[Replica]:
    folder = tmp_path_factory.mktemp("conditional_contract")
    shutil.copy(tiny_conditional_checkpoint, folder / "cond.safetensors")
    process = start_serve(folder, folder.parent / "conditional-contract.log", "--torch-threads", "1")
    yield process
    assert process.stop() == 0


def response_schema(spec: dict[str, Any], method: str, path: str) -> jsonschema.Draft202012Validator:
    schema = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**schema, "components": spec["components"]})


def test_a_conditional_models_requests_and_answers_are_the_documents(conditional_server: Replica) -> None:
    """The label fields as the document states them: what it allows is served, what is served is what it says."""
    url = conditional_server.url
    spec = httpx.get(f"{url}/openapi.json").json()
    listed = httpx.get(f"{url}/v1/models").json()
    response_schema(spec, "get", "/v1/models").validate(listed)
    assert listed["models"][0]["conditional"] is True and listed["models"][0]["classes"] == [str(d) for d in range(10)]
    calls = [
        ("/v1/sample", {"seeds": [1, 2], "labels": [3, "4"], "return_latents": True}),
        ("/v1/sample", {"n": 2, "label": 7.0}),
        ("/v1/interpolate", {"points": [{"seed": 1, "label": 0}, {"seed": 1, "label": "9"}], "steps": 3}),
    ]
    answers = {}
    for path, body in calls:
        assert body_schema(spec, path, "application/json").is_valid(body), body
        answer = httpx.post(f"{url}{path}", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        response_schema(spec, "post", path).validate(answer.json())
        answers[path] = answer.json()
    images = [item["data"] for item in answers["/v1/sample"]["images"]]
    score = {"images": images, "labels": [None, "7"]}
    assert body_schema(spec, "/v1/score", "application/json").is_valid(score)
    scored = httpx.post(f"{url}/v1/score", json=score, timeout=30)
    assert scored.status_code == 200, scored.text
    response_schema(spec, "post", "/v1/score").validate(scored.json())
    assert scored.json()["scores"][1]["label"] == "7" and scored.json()["scores"][1]["reference"] == "class"
    form = body_schema(spec, "/v1/score", "multipart/form-data")
    assert form.is_valid({"file": ["x"], "label": ["7"]}) and not form.is_valid({"file": ["x"], "label": []})
    # The only model is the default: a grid of sevens, as in the README.
    grid = httpx.post(f"{url}/v1/sample", json={"label": 7, "n": 16, "grid": True}, timeout=30)
    assert grid.status_code == 200 and grid.headers["content-type"] == "image/png"
    assert grid.headers["x-labels"] == ",".join(["7"] * 16) and grid.content.startswith(b"\x89PNG")
    unlabelled = httpx.post(f"{url}/v1/sample", json={"seed": 1}, timeout=30)
    assert unlabelled.status_code == 422 and unlabelled.json()["error"]["code"] == "invalid_request"
