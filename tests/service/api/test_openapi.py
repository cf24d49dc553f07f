"""The OpenAPI document is the API's contract: request and response models and the error envelope on every route."""

from __future__ import annotations

from pathlib import Path

from service import create_app
from tests.service.app_client import make_settings


def test_every_v1_route_declares_its_models_and_errors(tmp_path: Path) -> None:
    spec = create_app(make_settings(tmp_path)).openapi()
    schemas = spec["components"]["schemas"]
    assert {
        "SampleRequest",
        "SampleResponse",
        "InterpolateRequest",
        "InterpolateResponse",
        "ScoreResponse",
        "ModelInfo",
        "ModelList",
        "ErrorResponse",
    } <= set(schemas)
    paths = spec["paths"]
    expected = {
        ("/v1/sample", "post"): "SampleResponse",
        ("/v1/interpolate", "post"): "InterpolateResponse",
        ("/v1/score", "post"): "ScoreResponse",
        ("/v1/models", "get"): "ModelList",
        ("/v1/models/{name}", "get"): "ModelInfo",
    }
    for (path, method), response_model in expected.items():
        operation = paths[path][method]
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["$ref"].endswith(response_model)
        for status in ("401", "503"):
            error = operation["responses"][status]["content"]["application/json"]["schema"]
            assert error["$ref"].endswith("ErrorResponse"), (path, status)
        if method == "post":
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert body.get("$ref", "").endswith("Request") or body.get("additionalProperties") is False
    score_body = paths["/v1/score"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in score_body
    assert "image/png" in paths["/v1/sample"]["post"]["responses"]["200"]["content"]
    assert "image/gif" in paths["/v1/interpolate"]["post"]["responses"]["200"]["content"]
