"""Drive `tests.reliability.load_generator` against a real `wgan-serve` and judge every answer it recorded.

A 200 must hold exactly the images of its seeds: each PNG is decoded and compared, pixel for pixel, with the
generator run in this process on that seed alone (a batch of one) on the backend the server runs (the default,
`auto`: ONNX Runtime here), so that a batch that changed a seed's image in the server is caught. (Against eager
PyTorch, ONNX Runtime's 8-bit pixels may differ by one level on a few pixels: tests/service/inference checks that
tolerance.) A 503 must carry `Retry-After`. Anything else, and any request that hung, is an
error. The server's resident memory is read from /proc before and after the measured run (after a warm-up run,
so the baseline is not the cold process).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from models import latents_for_seeds, load_checkpoint
from service.inference import ForwardOptions, ModelRunner
from service.settings import Backend
from tests.deploy.processes import ROOT
from tests.e2e.serve_process import start_serve

WARM_UP_FIRST_SEED = 50_000_000
MEASURED_FIRST_SEED = 1_000_000


@dataclass(frozen=True)
class LoadPlan:
    requests: int
    concurrency: int
    warm_up_requests: int
    server_flags: tuple[str, ...] = ()
    max_seconds: float = 600.0
    backend: Backend = "auto"  # the server's --backend, and the one the expected images are made with


def rss_kib(pid: int) -> int:
    """Resident set size of a process and of every process below it (a server's supervisor and its workers), from
    /proc/PID/status (kB)."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total = int(line.split()[1])
            break
    else:
        raise RuntimeError(f"no VmRSS for process {pid}")
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError, RuntimeError):  # a process that has just exited holds none
                total += rss_kib(int(child))
    return total


def run_generator(url: str, out: Path, requests: int, concurrency: int, first_seed: int, max_seconds: float) -> dict:
    """The load generator as its own process; returns its summary line."""
    cmd = [
        sys.executable, "-m", "tests.reliability.load_generator", "--url", url, "--requests", str(requests),
        "--concurrency", str(concurrency), "--first-seed", str(first_seed), "--max-seconds", str(max_seconds),
        "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=max_seconds + 120, check=False)
    if done.returncode != 0:
        raise AssertionError(f"load generator failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Tiny forward passes, one after another: a second thread only adds contention (tens of times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def expected_images(checkpoint: Path, seeds: Iterable[int], backend: Backend = "auto") -> dict[int, np.ndarray]:
    """seed -> [H, W, C] uint8, each generated alone (a batch of one) in this process, on `backend` (the server's
    default unless told otherwise)."""
    ck = load_checkpoint(checkpoint)
    out: dict[int, np.ndarray] = {}
    with one_torch_thread():
        runner = ModelRunner(ck, torch.device("cpu"), torch.float32, ForwardOptions(backend))
        with torch.inference_mode():
            for seed in sorted(set(seeds)):
                z = latents_for_seeds([seed], ck.metadata.z_dim)  # [1, z_dim]
                out[seed] = runner.generate(z)[0]  # [H, W, C]
    return out


def _decode_png(data: str) -> np.ndarray:
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(data)), formats=("PNG",)))
    return pixels[:, :, None] if pixels.ndim == 2 else pixels  # [H, W, C]


def judge(records: list[dict[str, Any]], checkpoint: Path, backend: Backend = "auto") -> dict[str, Any]:
    """Count every outcome; a 200 is correct only when each image is its seed's, exactly, in order."""
    ok_seeds = [s for r in records if r["status"] == 200 for s in r["seeds"]]
    expected = expected_images(checkpoint, ok_seeds, backend)
    figures: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    for record in records:
        status = record["status"]
        if status == 200:
            images = record.get("images", [])
            right = [s for s, _ in images] == record["seeds"] and all(
                np.array_equal(_decode_png(data), expected[seed]) for seed, data in images
            )
            figures["answered_correctly" if right else "wrong_images"] += 1
            figures["images_checked"] += len(images)
        elif status == 503 and record.get("retry_after"):
            figures["overloaded_503"] += 1
        elif record.get("outcome") == "hung":
            figures["hung"] += 1
        else:
            figures["other_errors"] += 1
        if status not in (200, 503) and len(examples) < 5:
            examples.append(record)
    result: dict[str, Any] = {
        key: figures[key]
        for key in ("answered_correctly", "images_checked", "overloaded_503", "wrong_images", "other_errors", "hung")
    }
    result["error_examples"] = examples
    return result


def load_run(models_dir: Path, work: Path, plan: LoadPlan) -> dict[str, Any]:
    """Start the server, warm it up, measure RSS, run the plan, measure again, stop it (SIGTERM) and judge."""
    log = work / "wgan-serve.log"
    server = start_serve(models_dir, log, "--torch-threads", "1", "--backend", plan.backend, *plan.server_flags)
    try:
        run_generator(server.url, work / "warm_up.jsonl", plan.warm_up_requests, plan.concurrency,
                      WARM_UP_FIRST_SEED, plan.max_seconds)  # fmt: skip
        time.sleep(0.5)
        rss_before = rss_kib(server.proc.pid)
        summary = run_generator(server.url, work / "load.jsonl", plan.requests, plan.concurrency,
                                MEASURED_FIRST_SEED, plan.max_seconds)  # fmt: skip
        time.sleep(0.5)
        rss_after = rss_kib(server.proc.pid)
    finally:
        exit_code = server.stop()
    figures = {
        "requests_planned": plan.requests,
        "concurrency": plan.concurrency,
        "server_flags": list(plan.server_flags),
        **summary,
        **judge(read_records(work / "load.jsonl"), models_dir / "digits.safetensors", plan.backend),
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_change_percent": round(100.0 * (rss_after - rss_before) / rss_before, 2),
        "server_exit_code": exit_code,
    }
    print(json.dumps({"load": figures}))
    return figures


def assert_nothing_lost(figures: dict[str, Any], plan: LoadPlan, log: Path) -> None:
    assert figures["requests_sent"] == plan.requests, figures
    assert figures["hung"] == 0 and figures["other_errors"] == 0, figures["error_examples"]
    assert figures["wrong_images"] == 0, figures
    assert figures["answered_correctly"] + figures["overloaded_503"] == plan.requests, figures
    assert abs(figures["rss_change_percent"]) <= 10.0, figures
    assert figures["server_exit_code"] == 0, log.read_text()[-3000:]
