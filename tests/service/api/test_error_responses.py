"""Every bad input from the issue gets the error envelope, and the server keeps serving after each."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/json"}

BAD_SAMPLES = [
    ("malformed JSON", b'{"n": ', 400, "malformed_json"),
    ("unknown field", b'{"n": 1, "colour": "red"}', 422, "validation_error"),
    ("n = 0", b'{"n": 0}', 422, "validation_error"),
    ("negative n", b'{"n": -3}', 422, "validation_error"),
    ("n above the limit", b'{"n": 100000}', 422, "limit_exceeded"),
    ("n as a string", b'{"n": "3"}', 422, "validation_error"),
    ("seeds with seed", b'{"seeds": [1, 2], "seed": 3}', 422, "validation_error"),
    ("seeds with n", b'{"seeds": [1, 2], "n": 2}', 422, "validation_error"),
    ("too many seeds", b'{"seeds": [%s]}' % b",".join(b"1" for _ in range(65)), 422, "limit_exceeded"),
    ("negative seed", b'{"seed": -1}', 422, "validation_error"),
    ("seed past int64", b'{"seed": 9223372036854775807, "n": 2}', 422, "invalid_request"),
    ("unknown format", b'{"format": "bmp"}', 422, "validation_error"),
    ("zero truncation", b'{"truncation": 0}', 422, "validation_error"),
    ("NaN truncation (not JSON)", b'{"truncation": NaN}', 400, "malformed_json"),
    ("unknown model", b'{"model": "nope"}', 404, "model_not_found"),
    ("array body", b"[1, 2]", 422, "validation_error"),
]


@pytest.mark.parametrize(("what", "raw", "status", "code"), BAD_SAMPLES, ids=[c[0] for c in BAD_SAMPLES])
async def test_bad_sample_requests(client: httpx.AsyncClient, what: str, raw: bytes, status: int, code: str) -> None:
    response = await client.post("/v1/sample", content=raw, headers=JSON)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"] and "Traceback" not in response.text
    assert (await client.post("/v1/sample", json={"seed": 1})).status_code == 200


async def test_a_form_encoded_body_is_told_to_send_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/sample", content=b'{"n": 1}', headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]["message"]


async def test_unknown_routes_and_methods_use_the_envelope(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v2/everything")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong_method = await client.delete("/v1/sample")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
