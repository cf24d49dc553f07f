"""Serving throughput and latency beside the raw in-process generator and a naive handler, in one run.

    .venv/bin/python benchmarks/serve_bench.py [--checkpoint PATH] [--seconds 5] [--quick] [--out results.json]

Measures, on the same checkpoint (bundled_models/mnist5k.safetensors by default):
  cold     seconds from starting each wgan-serve (the service and every --compare) to its first /readyz 200,
           `--cold-starts` times each, the servers taking turns (the command to ready: imports, load, export,
           warm-up);
  raw      the generator called in-process at every batch size the engine uses (its warm-up sizes), latents drawn
           as the service draws them, torch using every core, images/s without and with the encoding a response
           needs (the service's PNG encoder, then base64): the in-process limit the service is held against;
  service  `POST /v1/sample` (PNG, base64 JSON) against a real `wgan-serve` process on 127.0.0.1 at concurrency
           1, 16, 64 and 256 with n = 1 and n = 16: requests/s, images/s, latency p50/p95/p99, and the histogram
           of forward-pass batch sizes read from /metrics (the change over each scenario);
  naive    the same load against benchmarks/naive_app.py (FastAPI, one forward pass per request, no batching).
  litserve (with --litserve WORKERS) the same load against benchmarks/litserve_app.py: LitServe's dynamic batching
           (64 requests, 5 ms), in its own virtual environment under build/, measured alternately with the service
           (and every --compare), CPU time summed over its process session; its whole process tree is stopped and
           checked gone (`processes_left_after_stop`).
  compared (with --compare NAME=ARGS, repeatable) more wgan-serve processes, measured alternately with the first,
           scenario by scenario (`--rounds` times each), so that all see the same machine load. ARGS are extra
           wgan-serve flags; an argument `@DIR` runs that server from the source tree DIR instead (another checkout,
           for a before/after run): `--compare 'before=@../before'`, `--compare 'wait2=--max-wait-ms=2'`.
The load generator runs in its own process, keeps `concurrency` requests in flight over keep-alive connections
and stops at a request budget or a time limit. The script prints one JSON document (also written to --out) and
a short table with the ratios service / raw (images/s, PNG included) and service / naive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


# ---- load generator (runs in its own process) -------------------------------------------------------------


async def _one_connection(
    host: str, port: int, request: bytes, deadline: float, budget: list[int], latencies: list[float], errors: list[str]
) -> None:
    """Send requests back to back on one keep-alive connection until the budget or the time runs out."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200 or b'"images"' not in body[:400]:
                errors.append(f"{status}: {body[:200]!r}")
    finally:
        writer.close()


async def _load(url: str, concurrency: int, requests: int, seconds: float, body: bytes, n: int) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST /v1/sample HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors: list[str] = []
    budget = [requests]
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_one_connection(host, int(port), request, deadline, budget, latencies, errors) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000, 3) if latencies else 0.0

    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "images_per_s": round(len(latencies) * n / elapsed, 1),
        "latency_ms": {
            "p50": pct(50),
            "p95": pct(95),
            "p99": pct(99),
            "mean": round(statistics.fmean(latencies) * 1000, 3) if latencies else 0.0,
        },
    }


def load_main(args: argparse.Namespace) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    body = json.dumps({"seed": args.seed, "n": args.n, "format": "png"}).encode()
    warm = asyncio.run(_load(args.url, args.concurrency, args.concurrency * 2, 3.0, body, args.n))
    if warm["errors"]:
        print(json.dumps({"error": warm["first_error"]}))
        return
    print(json.dumps(asyncio.run(_load(args.url, args.concurrency, args.requests, args.seconds, body, args.n))))


# ---- raw in-process throughput


def raw_throughput(checkpoint: Path, batch_sizes: list[int], seconds: float, torch_threads: int) -> dict[str, Any]:
    """Images/s of the bare generator at each batch size, without and with PNG + base64 encoding."""
    import base64

    import torch

    from models import latents_for_seeds, load_checkpoint, to_uint8
    from service.codecs import encode_png_batch

    torch.set_num_threads(torch_threads)
    loaded = load_checkpoint(checkpoint)
    generator, z_dim = loaded.generator, loaded.metadata.z_dim

    def run(batch: int, encode: bool, limit: float) -> dict[str, Any]:
        seed, images, forward_s, started = 0, 0, 0.0, time.perf_counter()
        deadline = started + limit
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            z = latents_for_seeds(range(seed, seed + batch), z_dim)  # [B, z_dim]
            with torch.inference_mode():
                pixels = to_uint8(generator(z)).numpy()  # [B, H, W, C]
            forward_s += time.perf_counter() - t0
            if encode:
                for png in encode_png_batch(pixels):
                    base64.b64encode(png)
            seed += batch
            images += batch
        elapsed = time.perf_counter() - started
        return {
            "images_per_s": round(images / elapsed, 1),
            "ms_per_batch": round(elapsed / (images / batch) * 1000, 3),
            "forward_ms_per_batch": round(forward_s / (images / batch) * 1000, 3),
        }

    by_batch: dict[str, Any] = {}
    for batch in batch_sizes:
        run(batch, True, min(0.5, seconds))  # warm-up
        by_batch[str(batch)] = {"without_png": run(batch, False, seconds), "with_png_base64": run(batch, True, seconds)}
    return {"torch_threads": torch_threads, "by_batch_size": by_batch}


# ---- orchestration ----------------------------------------------------------------------------------------


def ready_status(url: str, path: str) -> int | None:
    """The status of GET url+path, None when nothing answers. http.client, not httpx: a fresh httpx client costs
    about 30 ms of CPU (its SSL context), which a tight readiness poll would take from the server starting up."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def wait_ready(
    proc: subprocess.Popen[bytes], url: str, log: Path, interval: float = 0.2, path: str = "/readyz"
) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        if ready_status(url, path) == 200:
            return
        time.sleep(interval)
    proc.kill()
    raise TimeoutError(f"server was not ready:\n{log.read_text()}")


def free_port() -> int:
    from tests.ports import free_port as loopback_port  # the tests' one helper; ROOT is on the path by now

    return loopback_port()


def start_service(
    models_dir: Path, log: Path, extra: list[str], tree: Path | None = None, poll_s: float = 0.2
) -> tuple[subprocess.Popen[bytes], str]:
    """A wgan-serve process on a free port, ready; from the source tree `tree` when given (its code first on the
    path). `poll_s`: the interval between checks of /readyz."""
    port = free_port()
    cmd = [
        *(sys.executable, "-m", "service.cli"),
        *("--models-dir", str(models_dir), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WGAN_")}
    source = (tree or ROOT).resolve()
    env["PYTHONPATH"] = os.pathsep.join([str(source), *filter(None, [os.environ.get("PYTHONPATH")])])
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=source)
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, url, log, poll_s)
    return proc, url


def cold_starts(
    servers: dict[str, tuple[Path | None, list[str]]], models_dir: Path, log_dir: Path, rounds: int
) -> dict[str, Any]:
    """Seconds from starting each server (`name -> (source tree, flags)`) to its first /readyz 200, the servers
    taking turns `rounds` times; each is stopped before the next starts, so the machine is otherwise as idle as
    the benchmark leaves it."""
    times: dict[str, list[float]] = {name: [] for name in servers}
    for _ in range(rounds):
        for name, (tree, flags) in servers.items():
            started = time.perf_counter()
            proc, _url = start_service(models_dir, log_dir / f"cold-{name}.log", flags, tree, poll_s=0.01)
            times[name].append(round(time.perf_counter() - started, 3))
            stop(proc)
    return {name: {"seconds": runs, "median": statistics.median(runs)} for name, runs in times.items() if runs}


def start_naive(checkpoint: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [
        *(sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "benchmarks"), "--factory", "naive_app:create_app"),
        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"),
    ]
    env = {**os.environ, "NAIVE_CHECKPOINT": str(checkpoint)}
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, url, log)
    return proc, url


LITSERVE_VENV = ROOT / "build" / "litserve-venv"
LITSERVE_PACKAGES = ["litserve", "torch==2.13.0", "safetensors", "pydantic", "numpy"]


def litserve_python() -> Path:
    """The interpreter of LitServe's own virtual environment under build/, made on first use (pip: litserve, the
    project's torch version and what `models` imports); the project's environment is never touched."""
    python = LITSERVE_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(LITSERVE_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *LITSERVE_PACKAGES], check=True)
    return python


def start_litserve(checkpoint: Path, log: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """benchmarks/litserve_app.py in its own session, so that its whole process tree can be stopped at once."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LITSERVE_CHECKPOINT": str(checkpoint.resolve()),
        "LITSERVE_PORT": str(port),
        "LITSERVE_WORKERS": str(workers),
    }
    cmd = [str(litserve_python()), str(ROOT / "benchmarks" / "litserve_app.py")]
    proc = subprocess.Popen(
        cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, url, log, path="/health")
    return proc, url


def session_processes(sid: int) -> list[int]:
    """Processes of session `sid` still alive (Linux /proc)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def stop_tree(proc: subprocess.Popen[bytes]) -> list[int]:
    """SIGTERM to the whole session `proc` leads (its workers outlive a signal to the parent alone), SIGKILL to
    whatever is left after 30 s; returns the processes still alive after that (none, normally)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while session_processes(proc.pid) and time.monotonic() < deadline:
        proc.poll()
        time.sleep(0.2)
    if session_processes(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(1)
    proc.poll()
    return session_processes(proc.pid)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_load(url: str, concurrency: int, n: int, requests: int, seconds: float) -> dict[str, Any]:
    cmd = [
        *(sys.executable, __file__, "--load", url, "--concurrency", str(concurrency), "--n", str(n)),
        *("--requests", str(requests), "--seconds", str(seconds)),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def batch_histogram(metrics_text: str) -> dict[str, float]:
    """Cumulative bucket counts of `wgan_batch_size{op="generate"}`, by upper bound, plus `count` and `sum`."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "wgan_batch_size":
            continue
        for sample in family.samples:
            if sample.labels.get("op") != "generate":
                continue
            if sample.name.endswith("_bucket"):
                out[f"le_{sample.labels['le']}"] = out.get(f"le_{sample.labels['le']}", 0) + sample.value
            elif sample.name.endswith("_count"):
                out["count"] = out.get("count", 0) + sample.value
            elif sample.name.endswith("_sum"):
                out["sum"] = out.get("sum", 0) + sample.value
    return out


def histogram_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Forward passes per batch-size bucket (non-cumulative) during one scenario, and the mean batch size."""
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    bounds = sorted((k for k in delta if k.startswith("le_")), key=lambda k: float(k[3:]))
    buckets: dict[str, int] = {}
    below = 0.0
    for key in bounds:
        if delta[key] - below > 0:
            buckets[key.removeprefix("le_")] = int(delta[key] - below)
        below = delta[key]
    count = delta.get("count", 0)
    return {
        "forward_passes": int(count),
        "mean_batch_size": round(delta.get("sum", 0) / count, 2) if count else None,
        "passes_by_batch_size_upper_bound": buckets,
    }


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process so far (Linux /proc), None where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU time so far of a server process and its live worker processes (its children), None where unreadable."""
    own = process_cpu_seconds(pid)
    if own is None:
        return None
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return own + sum(process_cpu_seconds(int(child)) or 0.0 for child in children)


def sample_requests(metrics_text: str) -> float:
    """`wgan_requests_total` of /v1/sample, every status."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for family in text_string_to_metric_families(metrics_text)
        for s in family.samples
        if s.name == "wgan_requests_total" and s.labels.get("endpoint") == "/v1/sample"
    )


def measure_scenario(url: str, pid: int, concurrency: int, n: int, requests: int, seconds: float) -> dict[str, Any]:
    """One load run against a wgan-serve process; with its batch sizes, and the server's CPU time per request
    (warm-up requests included on both sides), which machine load disturbs less than throughput."""
    import httpx

    text = httpx.get(f"{url}/metrics", timeout=10).text
    before, requests_before, cpu_before = batch_histogram(text), sample_requests(text), tree_cpu_seconds(pid)
    load = run_load(url, concurrency, n, requests, seconds)
    cpu_after = tree_cpu_seconds(pid)
    text = httpx.get(f"{url}/metrics", timeout=10).text
    served = sample_requests(text) - requests_before
    cpu_per_request = None
    if cpu_before is not None and cpu_after is not None and served:
        cpu_per_request = round((cpu_after - cpu_before) / served * 1e6, 1)
    batches = histogram_delta(before, batch_histogram(text))
    return {**load, "server_cpu_us_per_request": cpu_per_request, "batches": batches}


def session_cpu_seconds(sid: int) -> float:
    """CPU time so far of every live process of session `sid` (a server and its worker processes)."""
    return sum(process_cpu_seconds(pid) or 0.0 for pid in session_processes(sid))


def measure_plain(url: str, sid: int, concurrency: int, n: int, requests: int, seconds: float) -> dict[str, Any]:
    """One load run against a server without wgan's /metrics (LitServe): CPU time per request from its whole
    process session; no batch sizes."""
    cpu_before = session_cpu_seconds(sid)
    load = run_load(url, concurrency, n, requests, seconds)
    served = load["requests"]
    cpu = round((session_cpu_seconds(sid) - cpu_before) / served * 1e6, 1) if served else None
    return {**load, "server_cpu_us_per_request": cpu, "batches": {"mean_batch_size": None}}


def measure_service(
    server: tuple[str, int], scenarios: list[tuple[int, int]], requests: int, seconds: float
) -> dict[str, Any]:
    return {f"c{c}_n{n}": measure_scenario(*server, c, n, requests, seconds) for c, n in scenarios}


def measure_alternating(
    servers: dict[str, tuple[str, int]],
    scenarios: list[tuple[int, int]],
    requests: int,
    seconds: float,
    rounds: int,
    plain: frozenset[str] = frozenset(),
) -> dict[str, dict[str, Any]]:
    """Each scenario measured on every server (url, pid) in turn, `rounds` times; per server the round with the
    median images/s is kept, with every round's figure beside it. Alternating puts the servers under the same load.
    Servers named in `plain` have no wgan /metrics (LitServe: pid is its session)."""
    results: dict[str, dict[str, Any]] = {name: {} for name in servers}
    for c, n in scenarios:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        for _ in range(rounds):
            for name, server in servers.items():
                measure = measure_plain if name in plain else measure_scenario
                runs[name].append(measure(*server, c, n, requests, seconds))
        for name, measured in runs.items():
            ordered = sorted(measured, key=lambda r: r["images_per_s"])
            median = ordered[(len(ordered) - 1) // 2]
            results[name][f"c{c}_n{n}"] = {
                **median,
                "rounds_images_per_s": [r["images_per_s"] for r in measured],
                "rounds_server_cpu_us_per_request": [r["server_cpu_us_per_request"] for r in measured],
            }
    return results


def measure_naive(url: str, scenarios: list[tuple[int, int]], requests: int, seconds: float) -> dict[str, Any]:
    return {f"c{c}_n{n}": run_load(url, c, n, requests, seconds) for c, n in scenarios}


def table(result: dict[str, Any]) -> str:
    raw = result["raw_in_process"]["by_batch_size"]
    lines = [
        f"cold start to /readyz, s: {name} {cold['median']} (median of {cold['seconds']})"
        for name, cold in result["cold_start_s"].items()
    ]
    lines.append("raw in-process (images/s):  batch  no-png  png+base64")
    for batch, row in raw.items():
        lines.append(
            f"  {batch:>5}  {row['without_png']['images_per_s']:>9}  {row['with_png_base64']['images_per_s']:>9}"
        )
    lines.append(
        "scenario      service img/s  p50 ms  p95 ms  p99 ms  mean batch  cpu us/req  naive img/s  naive p50  svc/raw"
        "  svc/naive"
    )
    for key, svc in result["service"].items():
        naive = result["naive"].get(key) or {"images_per_s": "-", "latency_ms": {"p50": "-"}}
        lines.append(
            f"{key:<12}  {svc['images_per_s']:>13}  {svc['latency_ms']['p50']:>6}  {svc['latency_ms']['p95']:>6}"
            f"  {svc['latency_ms']['p99']:>6}  {svc['batches']['mean_batch_size']!s:>10}"
            f"  {svc['server_cpu_us_per_request']!s:>10}  {naive['images_per_s']:>11}"
            f"  {naive['latency_ms']['p50']:>9}  {result['ratio_service_over_raw'][key]:>7}"
            f"  {result['ratio_service_over_naive'][key]!s:>9}"
        )
    for key, lit in result.get("litserve", {}).items():
        if isinstance(lit, dict) and "images_per_s" in lit:
            lines.append(
                f"litserve {key}: {lit['images_per_s']} img/s, p50 {lit['latency_ms']['p50']} ms, p99 "
                f"{lit['latency_ms']['p99']} ms; service/litserve {result['ratio_service_over_litserve'][key]}"
            )
    for name, compared in result.get("compared", {}).items():
        lines.append(f"compared {name}: {' '.join(compared['args'])}, measured alternately with the service")
        lines.append("scenario      img/s  p50 ms  p95 ms  mean batch  cpu us/req  service/compared")
        for key, other in compared["service"].items():
            lines.append(
                f"{key:<12}  {other['images_per_s']:>5}  {other['latency_ms']['p50']:>6}"
                f"  {other['latency_ms']['p95']:>6}  {other['batches']['mean_batch_size']!s:>10}"
                f"  {other['server_cpu_us_per_request']!s:>10}  {compared['ratio_service_over_compared'][key]:>16}"
            )
    lines.append("targets:")
    for name, target in result["targets"].items():
        verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        lines.append(f"  {name}: {target['figure']} (target {target['target']}): {verdict}")
    return "\n".join(lines)


def targets(
    service: dict[str, Any],
    naive: dict[str, Any],
    litserve: dict[str, Any],
    best_raw_png: float,
    raw_single_ms: float,
    cold_start: dict[str, Any],
) -> dict[str, dict[str, float | bool | None]]:
    """The documented targets, each with its figure and whether it is met (None where it was not measured)."""

    def row(figure: float | None, target: float, at_most: bool = False) -> dict[str, float | bool | None]:
        met = None if figure is None else (figure <= target if at_most else figure >= target)
        return {"figure": figure, "target": target, "met": met}

    idle, busy = service.get("c1_n1"), service.get("c64_n1")
    lit, slow = litserve.get("c64_n1"), naive.get("c64_n1")
    cold = (cold_start.get("service") or {}).get("median")
    return {
        "c64_n1 images/s, service / raw in-process (PNG + base64, all cores)": row(
            round(busy["images_per_s"] / best_raw_png, 3) if busy else None, 0.8
        ),
        "c64_n1 requests/s, service / LitServe": row(
            round(busy["requests_per_s"] / lit["requests_per_s"], 2) if busy and lit else None, 5.0
        ),
        "c64_n1 p99, service / LitServe": row(
            round(busy["latency_ms"]["p99"] / lit["latency_ms"]["p99"], 3) if busy and lit else None, 0.3, True
        ),
        "c64_n1 requests/s, service / naive": row(
            round(busy["requests_per_s"] / slow["requests_per_s"], 2) if busy and slow else None, 5.0
        ),
        "c1_n1 p50 minus raw single image (ms)": row(
            round(idle["latency_ms"]["p50"] - raw_single_ms, 3) if idle else None, 1.0, True
        ),
        "cold start to /readyz, median (s)": row(cold, 2.0, True),
    }


def parse_compare(spec: str) -> tuple[str, Path | None, list[str]]:
    """`NAME=ARGS` -> (name, source tree or None, wgan-serve flags); `@DIR` among ARGS names the tree."""
    name, sep, rest = spec.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--compare takes NAME=ARGS, not {spec!r}")
    tree: Path | None = None
    flags: list[str] = []
    for arg in shlex.split(rest):
        if arg.startswith("@"):
            tree = Path(arg[1:])
        else:
            flags.append(arg)
    return name, tree, flags


def parse_scenarios(spec: str) -> list[tuple[int, int]]:
    """`c64n1,c16n16` -> [(64, 1), (16, 16)]."""
    scenarios = []
    for part in spec.split(","):
        c, _, n = part.strip().removeprefix("c").partition("n")
        scenarios.append((int(c), int(n)))
    return scenarios


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "bundled_models" / "mnist5k.safetensors")
    parser.add_argument("--seconds", type=float, default=5.0, help="time limit of each measurement")
    parser.add_argument("--requests", type=int, default=50_000, help="request budget of each HTTP measurement")
    parser.add_argument("--max-batch-size", type=int, default=64, help="the server's --max-batch-size")
    parser.add_argument("--quick", action="store_true", help="1.5 s per measurement, c = 1 and 64 with n = 1 only")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra wgan-serve flag (repeatable)")
    parser.add_argument(
        "--compare",
        type=parse_compare,
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="also run another wgan-serve, measured alternately: ARGS are its extra flags, @DIR a source tree to run "
        "it from (repeatable)",
    )
    parser.add_argument(
        "--scenarios", type=parse_scenarios, help="load scenarios, e.g. c64n1,c16n16 (default: c1..c256 x n1, n16)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="with --compare or --litserve: alternations per scenario")
    parser.add_argument(
        "--cold-starts", type=int, default=3, help="starts of each server timed to its first /readyz 200 (0: none)"
    )
    parser.add_argument(
        "--litserve",
        type=int,
        metavar="WORKERS",
        default=0,
        help="also measure LitServe (benchmarks/litserve_app.py, batches of up to 64, 5 ms timeout) with this many "
        "workers, in its own environment under build/ (made on first use)",
    )
    parser.add_argument("--skip-naive", action="store_true", help="leave out the naive handler")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    # Internal: the load generator's own process.
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        args.url = args.load
        load_main(args)
        return

    sys.path.insert(0, str(ROOT))
    from service.inference import warm_up_sizes

    seconds = 1.5 if args.quick else args.seconds
    scenarios = args.scenarios or (
        [(1, 1), (64, 1)] if args.quick else [(c, n) for n in (1, 16) for c in (1, 16, 64, 256)]
    )
    torch_threads = os.cpu_count() or 1  # the raw limit uses every core
    batch_sizes = warm_up_sizes(args.max_batch_size)
    load_before = os.getloadavg()
    server_flags = ["--max-batch-size", str(args.max_batch_size), "--max-queue-items", "100000", *args.serve_arg]
    raw = raw_throughput(args.checkpoint, batch_sizes, seconds, torch_threads)
    with tempfile.TemporaryDirectory(prefix="serve_bench_") as tmp:
        tmp_dir = Path(tmp)
        models_dir = tmp_dir / "models"
        models_dir.mkdir()
        shutil.copy(args.checkpoint, models_dir / "bench.safetensors")
        cold_start = cold_starts(
            {
                "service": (None, server_flags),
                **{name: (tree, [*server_flags, *flags]) for name, tree, flags in args.compare},
            },
            models_dir,
            tmp_dir,
            args.cold_starts,
        )
        proc, url = start_service(models_dir, tmp_dir / "serve.log", server_flags)
        others: dict[str, subprocess.Popen[bytes]] = {}
        compared_service: dict[str, Any] = {}
        litserve: dict[str, Any] = {}
        lit_proc: subprocess.Popen[bytes] | None = None
        try:
            import httpx

            model = httpx.get(f"{url}/v1/models/bench", timeout=5).json()
            if args.compare or args.litserve:
                servers = {"service": (url, proc.pid)}
                for name, tree, flags in args.compare:
                    other, other_url = start_service(
                        models_dir, tmp_dir / f"serve-{name}.log", [*server_flags, *flags], tree
                    )
                    others[name] = other
                    servers[name] = (other_url, other.pid)
                if args.litserve:
                    lit_proc, lit_url = start_litserve(args.checkpoint, tmp_dir / "litserve.log", args.litserve)
                    servers["litserve"] = (lit_url, lit_proc.pid)
                measured = measure_alternating(
                    servers, scenarios, args.requests, seconds, args.rounds, frozenset({"litserve"})
                )
                service = measured.pop("service")
                if args.litserve:
                    litserve = {"workers": args.litserve, **measured.pop("litserve")}
                compared_service = measured
            else:
                service = measure_service((url, proc.pid), scenarios, args.requests, seconds)
        finally:
            stop(proc)
            for other in others.values():
                stop(other)
            if lit_proc is not None:
                litserve["processes_left_after_stop"] = stop_tree(lit_proc)
        naive: dict[str, Any] = {}
        if not args.skip_naive:
            proc, url = start_naive(args.checkpoint, tmp_dir / "naive.log")
            try:
                naive = measure_naive(url, scenarios, args.requests, seconds)
            finally:
                stop(proc)

    best_raw_png = max(row["with_png_base64"]["images_per_s"] for row in raw["by_batch_size"].values())
    raw_single_ms = raw["by_batch_size"]["1"]["with_png_base64"]["ms_per_batch"]
    result: dict[str, Any] = {
        "benchmark": "serve_bench",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "server_flags": server_flags,
        "checkpoint": {
            "path": str(args.checkpoint),
            "kind": model["kind"],
            "z_dim": model["z_dim"],
            "shape": [model["channels"], model["height"], model["width"]],
            "device": model["device"],
        },
        "cold_start_s": cold_start,
        "raw_in_process": raw,
        "raw_best_images_per_s_with_png_base64": best_raw_png,
        "service": service,
        "naive": naive,
        "litserve": litserve,
        "ratio_service_over_litserve": {
            k: round(v["images_per_s"] / litserve[k]["images_per_s"], 2) if litserve.get(k) else None
            for k, v in service.items()
        },
        "ratio_litserve_p99_over_service_p99": {
            k: round(litserve[k]["latency_ms"]["p99"] / v["latency_ms"]["p99"], 2) if litserve.get(k) else None
            for k, v in service.items()
        },
        "ratio_service_over_raw": {k: round(v["images_per_s"] / best_raw_png, 3) for k, v in service.items()},
        "ratio_service_over_naive": {
            k: round(v["images_per_s"] / naive[k]["images_per_s"], 2) if naive.get(k) else None
            for k, v in service.items()
        },
        "targets": targets(service, naive, litserve, best_raw_png, raw_single_ms, cold_start),
    }
    result["compared"] = {
        name: {
            "args": [*([f"@{tree}"] if tree else []), *flags],
            "rounds": args.rounds,
            "service": compared_service[name],
            "ratio_service_over_compared": {
                k: round(v["images_per_s"] / compared_service[name][k]["images_per_s"], 3) for k, v in service.items()
            },
            "ratio_compared_over_raw": {
                k: round(v["images_per_s"] / best_raw_png, 3) for k, v in compared_service[name].items()
            },
        }
        for name, tree, flags in args.compare
    }
    text = json.dumps(result, indent=2)
    print(text)
    print(table(result))
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
