"""Over real HTTP: `wgan-serve` answers the same bytes with its lean sampling path on (the default) and off
(`--no-fast-path`), on keep-alive connections, for plain requests and for ones the lean path hands over."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.e2e.serve_process import start_serve

KEY = "fast-path-key"
REQUESTS: list[tuple[dict[str, str], bytes]] = [
    ({}, b'{"seed": 21}'),
    ({}, b'{"seed": 30, "n": 4, "return_latents": true}'),
    ({"Accept": "image/png"}, b'{"seed": 5}'),
    ({}, b'{"model": "ring", "seeds": [1, 2, 3]}'),
    ({}, b'{"seed": 1, "n": 9999}'),
    ({}, b'{"seed": 1, "n": 4, "grid": true}'),
    ({}, b'{"seed": 1, "extra": 1}'),
    ({}, b'{"seed": '),
    ({"Authorization": "Bearer not-the-key"}, b'{"seed": 21}'),
]


def test_the_same_bytes_with_the_lean_path_on_and_off(
    tmp_path: Path, tiny_image_checkpoint: Path, tiny_points_checkpoint: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_image_checkpoint, folder / "digits.safetensors")
    shutil.copy(tiny_points_checkpoint, folder / "ring.safetensors")
    answers: dict[bool, list[tuple[int, str | None, str | None, bytes]]] = {}
    for on in (True, False):
        flags = ["--torch-threads", "1", "--api-keys", KEY, *([] if on else ["--no-fast-path"])]
        server = start_serve(folder, tmp_path / f"wgan-serve-{on}.log", *flags)
        try:
            base = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
            with httpx.Client(base_url=server.url, timeout=30) as client:  # one keep-alive connection
                answers[on] = [
                    (r.status_code, r.headers.get("content-type"), r.headers.get("x-seeds"), r.content)
                    for r in (
                        client.post("/v1/sample", content=body, headers={**base, **extra})
                        for extra, body in REQUESTS
                    )
                ]
        finally:
            assert server.stop() == 0
    assert answers[True] == answers[False]
    assert [status for status, *_ in answers[True]] == [200, 200, 200, 200, 422, 200, 422, 400, 401]
    assert answers[True][2][1:3] == ("image/png", "5")
