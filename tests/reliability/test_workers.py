"""A server of several worker processes behaves as one: requests on different connections land on different
workers, one scrape of /metrics adds up every worker's counts, a reload reaches every worker, a worker killed
under load is replaced while the others keep answering, and the server stops cleanly (SIGINT; its supervisor
killed outright leaves no worker behind)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.deploy.processes import Replica
from tests.e2e.serve_process import start_serve

ADMIN_KEY = "admin-workers-7c1"
WORKERS = 2


def fresh_get(url: str, **kwargs: object) -> httpx.Response:
    """One request on its own connection, so any worker may accept it."""
    with httpx.Client(timeout=30) as client:
        return client.get(url, **kwargs)  # type: ignore[arg-type]


def fresh_post(url: str, **kwargs: object) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        return client.post(url, **kwargs)  # type: ignore[arg-type]


def worker_pids(server: Replica) -> set[int]:
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    return {int(pid) for pid in children}


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def answering_workers(url: str, requests: int = 48, concurrency: int = 8) -> Counter[str]:
    """Which worker answered each of `requests` samples sent `concurrency` at a time on fresh connections."""

    def one(seed: int) -> str:
        response = fresh_post(f"{url}/v1/sample", json={"seed": seed, "n": 2})
        assert response.status_code == 200, response.text
        return response.headers["x-wgan-worker"]

    with ThreadPoolExecutor(concurrency) as pool:
        return Counter(pool.map(one, range(requests)))


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    folder = tmp_path_factory.mktemp("workers_models")
    for path in models_dir.glob("*.safetensors"):
        shutil.copy(path, folder / path.name)
    log = tmp_path_factory.mktemp("workers_log") / "wgan-serve.log"
    flags = ["--workers", str(WORKERS), "--admin-key", ADMIN_KEY, "--reload-poll-s", "0"]
    replica = start_serve(folder, log, *flags)
    yield replica
    assert replica.stop() == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()


def test_requests_land_on_every_worker_and_one_scrape_adds_up_their_counts(server: Replica) -> None:
    before = fresh_get(f"{server.url}/metrics").text
    answered = answering_workers(server.url)
    assert set(answered) == {str(i) for i in range(WORKERS)}, answered
    for _ in range(3):  # whichever worker answers the scrape, it reports every worker's counts
        after = fresh_get(f"{server.url}/metrics").text
        sampled = metric(after, "wgan_requests_total", endpoint="/v1/sample", status="200") - metric(
            before, "wgan_requests_total", endpoint="/v1/sample", status="200"
        )
        items = metric(after, "wgan_items_total", model="digits") - metric(before, "wgan_items_total", model="digits")
        assert (sampled, items) == (48, 96)
        info = [line for line in after.splitlines() if line.startswith("wgan_model_info{")]
        assert sorted(re.findall(r'model="(\w+)"', " ".join(info))) == ["digits", "ring"]  # once each, no pid
        assert "pid=" not in after
        assert metric(after, "wgan_queue_depth") == 0
    assert fresh_get(f"{server.url}/readyz").status_code == 200


def test_a_reload_reaches_every_worker(server: Replica, tiny_image_checkpoint_v2: Path) -> None:
    folder = Path(re.findall(r"--models-dir (\S+)", " ".join(server.proc.args))[0])  # type: ignore[arg-type]
    target = folder / "digits.safetensors"
    shutil.copy(tiny_image_checkpoint_v2, folder / ".incoming")
    os.replace(folder / ".incoming", target)  # the watcher is off: only the reload can swap it in
    reloaded = fresh_post(f"{server.url}/v1/admin/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert reloaded.status_code == 200, reloaded.text
    body = reloaded.json()
    assert (body["workers"], body["workers_total"]) == (WORKERS, WORKERS)
    new_version = next(m["version"] for m in body["loaded"] if m["name"] == "digits")
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 20
    while len(seen) < WORKERS and time.monotonic() < deadline:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: fresh_get(f"{server.url}/v1/models/digits"), range(8)))
        for answer in answers:
            seen[answer.headers["x-wgan-worker"]] = answer.json()["version"]
    assert seen == {str(i): new_version for i in range(WORKERS)}


def test_a_killed_worker_is_replaced_while_the_others_answer(models_dir: Path, tmp_path: Path) -> None:
    concurrency = 8
    server = start_serve(models_dir, tmp_path / "wgan-serve.log", "--workers", str(WORKERS))
    outcomes: list[tuple[float, str]] = []
    stop = threading.Event()

    def client(first_seed: int) -> None:
        seed = first_seed
        while not stop.is_set():
            try:
                response = fresh_post(f"{server.url}/v1/sample", json={"seed": seed, "n": 4})
                outcomes.append((time.monotonic(), str(response.status_code)))
            except httpx.HTTPError as exc:
                outcomes.append((time.monotonic(), type(exc).__name__))
            seed += 1

    try:
        before = worker_pids(server)
        assert len(before) == WORKERS
        threads = [threading.Thread(target=client, args=(1000 * k,)) for k in range(concurrency)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        time.sleep(1.0)  # the other worker answers meanwhile
        deadline = time.monotonic() + 60
        while not (len(worker_pids(server) - before) == 1 and fresh_get(f"{server.url}/readyz").status_code == 200):
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.1)
        ready_again = time.monotonic()
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        scrape = fresh_get(f"{server.url}/metrics").text
    finally:
        stop.set()
        code = server.stop()
    text = server.log.read_text()
    failed = [o for t, o in outcomes if o != "200"]
    assert len(failed) <= concurrency, Counter(failed)  # at most what the killed worker held
    assert set(failed) <= {"ReadError", "RemoteProtocolError", "ConnectError"}, Counter(failed)
    assert any(o == "200" for t, o in outcomes if killed + 0.2 < t < ready_again)  # answered meanwhile
    assert any(o == "200" for t, o in outcomes if t > ready_again)
    answered = sum(1 for _, o in outcomes if o == "200")
    counted = metric(scrape, "wgan_requests_total", endpoint="/v1/sample", status="200")
    assert answered - concurrency <= counted <= answered + concurrency  # the dead worker's counts are kept
    assert f"(pid {victim}) was killed by SIGKILL" in text and "a replacement" in text
    assert code == 0 and "Traceback" not in text, text[-3000:]


def test_sigint_drains_every_worker_and_removes_the_state_folder(models_dir: Path, tmp_path: Path) -> None:
    server = start_serve(models_dir, tmp_path / "wgan-serve.log", "--workers", str(WORKERS))
    pids = worker_pids(server)
    code = server.stop(signal.SIGINT)
    text = server.log.read_text()
    state = Path(re.findall(r"state folder (\S+)\)", text)[0])
    assert code == 130, text[-3000:]
    assert not state.exists()
    assert text.count("drained: no request in flight") == WORKERS
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)


def test_workers_of_a_killed_supervisor_drain_and_exit(models_dir: Path, tmp_path: Path) -> None:
    server = start_serve(models_dir, tmp_path / "wgan-serve.log", "--workers", str(WORKERS))
    pids = worker_pids(server)
    server.proc.kill()
    server.proc.wait()
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, server.log.read_text()[-3000:]
        time.sleep(0.1)
    assert server.log.read_text().count("the supervisor is gone; stopping") == WORKERS


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
