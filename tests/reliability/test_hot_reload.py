"""Hot reload over a real wgan-serve: a new checkpoint dropped into the models folder is swapped in under load
without failing a request; corrupt, pickled and truncated files are refused with a log line while the old
version keeps serving; a file still being copied is loaded only once it holds still."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import pickle
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from service.inference.cpu_cores import available_cores
from tests.deploy.processes import Replica
from tests.e2e.serve_process import start_serve
from tests.reliability.load_check import expected_images

POLL_S = 0.5
# The servers run `--workers auto`: one worker process per core, each with its own folder watcher.
WORKERS = available_cores()


def version_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def drop_in(target: Path, data: bytes) -> None:
    """Write like the trainer does: a hidden temporary file in the same folder, then os.replace."""
    temporary = target.parent / f".{target.name}.incoming"
    temporary.write_bytes(data)
    os.replace(temporary, target)


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


class MarkerOnUnpickle:
    """Unpickling this runs `open(path, "w")`: if the server ever unpickled the file, the marker would appear."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


@pytest.fixture
def folder(tmp_path: Path, tiny_image_checkpoint: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny_image_checkpoint, models / "digits.safetensors")
    return models


@pytest.fixture
def server(folder: Path, tmp_path: Path) -> Iterator[Replica]:
    log = tmp_path / "wgan-serve.log"
    process = start_serve(folder, log, "--torch-threads", "1", "--reload-poll-s", str(POLL_S))
    yield process
    assert process.stop() == 0, log.read_text()[-3000:]


def served_version(server: Replica) -> str:
    return httpx.get(f"{server.url}/v1/models/digits").json()["version"]


def everywhere(server: Replica, path: str, check: Callable[[httpx.Response], bool]) -> bool:
    """Whether `check` holds for the answer of every worker process to `GET path` (requests on fresh connections
    until each worker has answered one). Workers swap a changed file at moments apart: one that has swapped does
    not mean all have."""
    answered: dict[str, bool] = {}
    for _ in range(200):
        response = httpx.get(f"{server.url}{path}")
        answered[response.headers.get("x-wgan-worker", "0")] = check(response)
        if len(answered) >= WORKERS:
            break
    return len(answered) >= WORKERS and all(answered.values())


class SteadyLoad:
    """Seeded /v1/sample requests from a few threads; each answer is kept with the version it reports."""

    def __init__(self, url: str, threads: int = 6) -> None:
        self.url = url
        self.answers: list[tuple[int, int, str | None, str | None]] = []  # status, seed, version, png (base64)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(threads)]

    def _run(self, k: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            seed = 1000 * k
            while not self._stop.is_set():
                response = client.post("/v1/sample", json={"seed": seed})
                if response.status_code == 200:
                    body = response.json()
                    self.answers.append((200, seed, body["version"], body["images"][0]["data"]))
                else:
                    self.answers.append((response.status_code, seed, None, None))
                seed += 1

    def __enter__(self) -> SteadyLoad:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)


def image_for(checkpoint: Path, seed: int) -> np.ndarray:
    return expected_images(checkpoint, [seed])[seed][:, :, 0]  # [H, W]


def test_a_new_checkpoint_is_swapped_in_under_load_without_failing_a_request(
    server: Replica, folder: Path, tiny_image_checkpoint: Path, tiny_image_checkpoint_v2: Path
) -> None:
    old, new = version_of(tiny_image_checkpoint), version_of(tiny_image_checkpoint_v2)
    assert served_version(server) == old and old != new
    with SteadyLoad(server.url) as load:
        wait_until(lambda: len(load.answers) > 30)
        drop_in(folder / "digits.safetensors", tiny_image_checkpoint_v2.read_bytes())
        wait_until(lambda: everywhere(server, "/v1/models/digits", lambda r: r.json()["version"] == new))
        settled = len(load.answers)
        wait_until(lambda: len(load.answers) > settled + 30)
    statuses = {status for status, *_ in load.answers}
    assert statuses == {200}, f"requests failed during the swap: {statuses}"
    versions = [version for _, _, version, _ in load.answers]
    assert old in versions and new in versions
    # Every image is the one its reported version makes for its seed.
    checkpoints = {old: tiny_image_checkpoint, new: tiny_image_checkpoint_v2}
    for _, seed, version, png in load.answers[:: max(1, len(load.answers) // 40)]:
        assert version is not None and png is not None
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))))
        assert np.array_equal(pixels, image_for(checkpoints[version], seed)), (seed, version)
    assert f"reloaded digits: version {old} -> {new}" in server.log.read_text()


def test_bad_files_are_refused_and_the_old_version_keeps_serving(
    server: Replica, folder: Path, tmp_path: Path, tiny_image_checkpoint: Path, tiny_image_checkpoint_v2: Path
) -> None:
    old = version_of(tiny_image_checkpoint)
    marker = tmp_path / "unpickled"
    good = tiny_image_checkpoint_v2.read_bytes()
    bad_files = {
        "corrupt": os.urandom(4096),
        "pickle": pickle.dumps({"generator": MarkerOnUnpickle(marker)}),
        "torch.save": b"",  # filled below: a real torch.save zip (a pickle inside)
        "truncated": good[: len(good) // 2],
    }
    buffer = io.BytesIO()
    torch.save({"state_dict": MarkerOnUnpickle(marker)}, buffer)
    bad_files["torch.save"] = buffer.getvalue()

    def refused(times: int) -> Callable[[], bool]:
        return lambda: server.log.read_text().count("refusing digits.safetensors") >= times

    for refusals, (kind, data) in enumerate(bad_files.items(), start=1):
        drop_in(folder / "digits.safetensors", data)
        wait_until(refused(refusals))
        assert served_version(server) == old, kind
        assert httpx.post(f"{server.url}/v1/sample", json={"seed": 1}).status_code == 200, kind
    assert not marker.exists(), "a pickle was unpickled"
    assert f"still serving version {old}" in server.log.read_text()
    # A good file under the same name is then taken.
    drop_in(folder / "digits.safetensors", good)
    wait_until(lambda: served_version(server) == version_of(tiny_image_checkpoint_v2))


def test_a_file_still_being_copied_is_loaded_only_once_complete(
    server: Replica, folder: Path, tiny_image_checkpoint: Path, tiny_image_checkpoint_v2: Path
) -> None:
    data = tiny_image_checkpoint_v2.read_bytes()
    target = folder / "digits.safetensors"
    step = max(1, len(data) // 40)
    with target.open("wb") as fh:  # like `cp`: the final name, written a piece at a time
        for start in range(0, len(data), step):
            fh.write(data[start : start + step])
            fh.flush()
            assert served_version(server) == version_of(tiny_image_checkpoint)
            time.sleep(0.05)
    wait_until(lambda: served_version(server) == version_of(tiny_image_checkpoint_v2))
    assert "refusing digits.safetensors" not in server.log.read_text()


def test_new_and_removed_files_add_and_drop_models(server: Replica, folder: Path, tiny_points_checkpoint: Path) -> None:
    drop_in(folder / "ring.safetensors", tiny_points_checkpoint.read_bytes())
    wait_until(lambda: everywhere(server, "/v1/models/ring", lambda r: r.status_code == 200))
    assert httpx.post(f"{server.url}/v1/sample", json={"model": "ring", "seed": 1}).status_code == 200
    (folder / "ring.safetensors").unlink()
    wait_until(lambda: everywhere(server, "/v1/models/ring", lambda r: r.status_code == 404))
    assert [m["name"] for m in httpx.get(f"{server.url}/v1/models").json()["models"]] == ["digits"]
