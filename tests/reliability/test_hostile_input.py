"""Hostile and broken input against a real wgan-serve: each gets the error envelope or a correct answer, and the
server keeps answering ordinary requests meanwhile.

Images: EXIF orientation, palettes, alpha, 16-bit grey, animations. Bodies: 10,000 multipart parts, deeply
nested JSON, a body trickled byte by byte. Heads: trickled headers, huge and numerous headers, broken
Content-Length, a connection that sends nothing.
"""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.deploy.processes import Replica
from tests.e2e.serve_process import start_serve
from tests.reliability.raw_http import exchange, request_bytes, serving_meanwhile

READ_TIMEOUT_S = 2.0
MAX_HEADER_BYTES = 8192
MAX_HEADERS = 40


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[Replica]:
    log = models_dir.parent / "hostile-wgan-serve.log"
    flags = [
        "--torch-threads", "1", "--request-read-timeout-s", str(READ_TIMEOUT_S), "--keep-alive-timeout-s", "2",
        "--max-header-bytes", str(MAX_HEADER_BYTES), "--max-headers", str(MAX_HEADERS),
        "--max-body-bytes", str(8 * 1024 * 1024), "--max-images-per-score", "16",
    ]  # fmt: skip
    process = start_serve(models_dir, log, *flags)
    yield process
    assert process.proc.poll() is None, "the server died under hostile input:\n" + log.read_text()[-3000:]
    assert process.stop() == 0
    assert "Traceback" not in log.read_text()


@pytest.fixture(scope="module")
def digit(server: Replica) -> np.ndarray:
    """A 16x16 grey image the model made: [16, 16] uint8."""
    png = httpx.post(f"{server.url}/v1/sample", json={"seed": 3}, headers={"Accept": "image/png"}).content
    return np.asarray(Image.open(io.BytesIO(png)))


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return base64.b64encode(buffer.getvalue()).decode()


def png16_grey(values: np.ndarray) -> bytes:
    """A 16-bit greyscale PNG of [H, W] uint16 values, written by hand."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    h, w = values.shape
    raw = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def scores(server: Replica, images: list[str]) -> list[float]:
    response = httpx.post(f"{server.url}/v1/score", json={"images": images}, timeout=30)
    assert response.status_code == 200, response.text
    return [s["critic"] for s in response.json()["scores"]]


# ---- images ---------------------------------------------------------------------------------------------------


def test_odd_image_modes_score_like_the_plain_image(server: Replica, digit: np.ndarray) -> None:
    plain = Image.fromarray(digit)
    palette = Image.new("P", plain.size)
    palette.putpalette([v for i in range(256) for v in (i, i, i)])
    palette.putdata(digit.flatten().tolist())
    opaque_la = Image.merge("LA", [plain, Image.new("L", plain.size, 255)])
    opaque_rgba = Image.merge("RGBA", [plain, plain, plain, Image.new("L", plain.size, 255)])
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: a viewer turns it 90 degrees clockwise to show it upright
    rotated = plain.transpose(Image.Transpose.ROTATE_90)
    sixteen = base64.b64encode(png16_grey(digit.astype(np.uint16) * 257)).decode()
    images = [
        encode(plain), encode(palette), encode(opaque_la), encode(opaque_rgba),
        encode(rotated, exif=exif.tobytes()), sixteen,
    ]  # fmt: skip
    with serving_meanwhile(server.url) as others:
        got = scores(server, images)
    others.assert_served()
    assert got == pytest.approx([got[0]] * len(images), abs=1e-5), got


def test_transparency_is_composited_over_black(server: Replica, digit: np.ndarray) -> None:
    alpha = np.full(digit.shape, 255, dtype=np.uint8)
    alpha[:, :8] = 0  # the left half is transparent
    noisy = np.where(alpha == 0, 200, digit).astype(np.uint8)  # whatever hides under the transparent half
    rgba = Image.merge("RGBA", [Image.fromarray(noisy)] * 3 + [Image.fromarray(alpha)])
    expected = np.where(alpha == 0, 0, digit).astype(np.uint8)
    got = scores(server, [encode(rgba), encode(Image.fromarray(expected)), encode(Image.fromarray(noisy))])
    assert got[0] == pytest.approx(got[1], abs=1e-5) and got[0] != pytest.approx(got[2], abs=1e-5)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_images_are_refused(server: Replica, digit: np.ndarray, fmt: str) -> None:
    frames = [Image.fromarray(digit), Image.fromarray(255 - digit)]
    animated = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with serving_meanwhile(server.url) as others:
        response = httpx.post(f"{server.url}/v1/score", json={"images": [animated]})
    others.assert_served()
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_image"
    assert "animated" in response.json()["error"]["message"]


# ---- bodies ---------------------------------------------------------------------------------------------------


def test_a_multipart_body_with_10000_parts_is_refused(server: Replica, digit: np.ndarray) -> None:
    boundary = "hostile-boundary"
    png = base64.b64decode(encode(Image.fromarray(digit)))
    part = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + b"\r\n"
    )
    body = part * 10_000 + f"--{boundary}--\r\n".encode()
    assert len(body) < 8 * 1024 * 1024
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    with serving_meanwhile(server.url) as others:
        started = time.monotonic()
        response = httpx.post(f"{server.url}/v1/score", content=body, headers=headers, timeout=60)
        elapsed = time.monotonic() - started
    others.assert_served()
    assert response.status_code in (400, 413, 422), response.text
    assert response.json()["error"]["code"] and elapsed < 10


@pytest.mark.parametrize("path", ["/v1/sample", "/v1/score", "/v1/interpolate"])
def test_deeply_nested_json_is_refused(server: Replica, path: str) -> None:
    depth = 200_000
    body = b'{"seed": ' + b"[" * depth + b"]" * depth + b"}"
    with serving_meanwhile(server.url) as others:
        response = httpx.post(server.url + path, content=body, headers={"Content-Type": "application/json"})
    others.assert_served()
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["code"] in ("malformed_json", "malformed_body", "validation_error")


def test_a_trickled_body_gets_408_and_the_connection_closes(server: Replica) -> None:
    head = request_bytes("POST", "/v1/sample", {"Content-Type": "application/json", "Content-Length": "200"})
    trickle = [head] + [b" "] * 40  # one byte every 0.25 s: 10 s if nothing stopped it
    with serving_meanwhile(server.url) as others:
        started = time.monotonic()
        response = exchange(server.port, trickle, pause_s=0.25)
        elapsed = time.monotonic() - started
    others.assert_served()
    assert response is not None and response.status == 408 and response.error_code() == "request_timeout"
    assert response.headers.get("connection") == "close"
    assert elapsed < READ_TIMEOUT_S + 3


# ---- request heads --------------------------------------------------------------------------------------------


def test_trickled_headers_get_408(server: Replica) -> None:
    head = request_bytes("GET", "/healthz", {"X-Slow": "a" * 40})
    trickle = [head[i : i + 1] for i in range(len(head))]  # one byte every 0.1 s
    with serving_meanwhile(server.url) as others:
        started = time.monotonic()
        response = exchange(server.port, trickle, pause_s=0.1)
        elapsed = time.monotonic() - started
    others.assert_served()
    assert response is not None and response.status == 408 and response.error_code() == "request_timeout"
    assert elapsed < READ_TIMEOUT_S + 3


def test_a_connection_that_sends_nothing_is_closed(server: Replica) -> None:
    started = time.monotonic()
    response = exchange(server.port, [])
    assert response is None and time.monotonic() - started < READ_TIMEOUT_S + 3


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"X-Huge": "h" * (MAX_HEADER_BYTES * 4)}, "headers_too_large"),
        ({f"X-Many-{i}": "1" for i in range(MAX_HEADERS * 5)}, "too_many_headers"),
    ],
    ids=["huge", "many"],
)
def test_header_abuse_gets_431(server: Replica, headers: dict[str, str], code: str) -> None:
    with serving_meanwhile(server.url) as others:
        response = exchange(server.port, [request_bytes("GET", "/healthz", headers)])
    others.assert_served()
    assert response is not None and response.status == 431 and response.error_code() == code


def test_a_long_url_gets_431(server: Replica) -> None:
    response = exchange(server.port, [request_bytes("GET", "/v1/models/" + "x" * (MAX_HEADER_BYTES * 2), {})])
    assert response is not None and response.status == 431 and response.error_code() == "headers_too_large"


@pytest.mark.parametrize(
    "content_length",
    [["abc"], ["-5"], ["10", "20"], ["99999999999999999999999999"]],
    ids=["text", "negative", "conflicting", "overflowing"],
)
def test_a_broken_content_length_gets_an_envelope(server: Replica, content_length: list[str]) -> None:
    head = "POST /v1/sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "".join(f"Content-Length: {v}\r\n" for v in content_length) + "\r\n"
    with serving_meanwhile(server.url) as others:
        response = exchange(server.port, [head.encode() + b'{"seed": 1}'])
    others.assert_served()
    assert response is not None and response.status in (400, 413), response
    assert response.error_code() in ("malformed_request", "malformed_body", "payload_too_large")


def test_garbage_instead_of_http_gets_an_envelope(server: Replica) -> None:
    response = exchange(server.port, [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n"])
    assert response is not None and response.status == 400 and response.error_code() == "malformed_request"


# ---- edges ----------------------------------------------------------------------------------------------------


def png_with_rows(width: int, height: int, rows: int, value: int = 200) -> bytes:
    """A grey PNG whose header declares width x height but whose (complete, valid) zlib stream holds `rows` rows."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    raw = b"".join(b"\x00" + bytes([value]) * width for _ in range(rows))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("width", "height", "rows", "resize"),
    [(16, 16, 4, "error"), (4096, 4096, 4, "fit"), (16, 16, 17, "error")],
    ids=["few-rows", "huge-few-rows", "extra-rows"],
)
def test_a_png_whose_data_does_not_fill_its_header_is_refused(
    server: Replica, width: int, height: int, rows: int, resize: str
) -> None:
    short = base64.b64encode(png_with_rows(width, height, rows)).decode()
    response = httpx.post(f"{server.url}/v1/score", json={"images": [short], "resize": resize}, timeout=30)
    assert response.status_code == 422 and response.json()["error"]["code"] == "corrupt_image", response.text
    whole = base64.b64encode(png_with_rows(16, 16, 16)).decode()
    assert len(scores(server, [whole])) == 1  # the same file with every row is scored


def test_a_request_without_exactly_one_host_header_gets_400(server: Replica) -> None:
    for head in (b"GET /healthz HTTP/1.1\r\n\r\n", b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"):
        response = exchange(server.port, [head])
        assert response is not None and response.status == 400 and response.error_code() == "missing_host", head
        assert response.headers["connection"] == "close"
    old = exchange(server.port, [b"GET /healthz HTTP/1.0\r\n\r\n"])  # HTTP/1.0 has no Host requirement
    assert old is not None and old.status == 200


def test_a_websocket_upgrade_is_answered_as_plain_http(server: Replica) -> None:
    upgrade = {
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }  # fmt: skip
    missing = exchange(server.port, [request_bytes("GET", "/ws", upgrade)])
    assert missing is not None and missing.status == 404 and missing.error_code() == "not_found"
    assert missing.headers["content-type"] == "application/json" and missing.headers["connection"] == "close"
    health = exchange(server.port, [request_bytes("GET", "/healthz", upgrade)])
    assert health is not None and health.status == 200 and health.body == b'{"status":"ok"}'


def test_echoed_input_is_cut_to_a_sane_length(server: Replica) -> None:
    name = "m" * 6000  # the server's head limit here is 8 KiB
    unknown_model = httpx.get(f"{server.url}/v1/models/{name}")
    assert unknown_model.status_code == 404 and len(unknown_model.content) < 500, len(unknown_model.content)
    assert "6000 characters" in unknown_model.json()["error"]["message"]
    no_route = httpx.get(f"{server.url}/{name}")
    assert no_route.status_code == 404 and len(no_route.content) < 500, len(no_route.content)
    for body in ({"seed": 1, name: 1}, {"model": name}):
        refused = httpx.post(f"{server.url}/v1/sample", json=body)
        assert refused.status_code in (404, 422) and len(refused.content) < 1000, (refused.status_code, body.keys())
    media = httpx.post(f"{server.url}/v1/score", content=b"x", headers={"Content-Type": "text/" + name})
    assert media.status_code == 415 and len(media.content) < 1000, len(media.content)
