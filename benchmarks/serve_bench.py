"""Serving throughput beside raw in-process generator throughput, on one checkpoint, in one run.

    python benchmarks/serve_bench.py [--checkpoint PATH] [--seconds 8] [--out results.json]

Measures, on the same checkpoint:
  raw      the generator called in-process in batches of `--batch` seeded latents (latents drawn as the service
           draws them), images/s with and without PNG encoding (the service's encoder, one thread);
  service  `POST /v1/sample` (n = 1, PNG, base64 JSON) against a real `wgan-serve` process on 127.0.0.1, at
           concurrency 1 and 64, driven by a load generator in a separate process that keeps that many
           requests in flight over keep-alive connections, bounded by a request count and a time limit.
It prints one JSON document (and writes it to --out) with requests/s, latency percentiles and the ratio
service / raw (PNG included). Without --checkpoint it first trains a small one with `training.train`
(configs/mnist5k.yaml for a few iterations: throughput does not depend on how well it was trained).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
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
            if status != 200 or not body.startswith(b'{"model"'):
                errors.append(f"{status}: {body[:200]!r}")
    finally:
        writer.close()


async def _load(url: str, concurrency: int, requests: int, seconds: float, body: bytes) -> dict[str, Any]:
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
        "latency_ms": {
            "p50": pct(50),
            "p90": pct(90),
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
    body = json.dumps({"seed": args.seed, "n": 1, "format": "png"}).encode()
    warm = asyncio.run(_load(args.url, args.concurrency, max(args.concurrency * 4, 50), 5.0, body))
    if warm["errors"]:
        print(json.dumps({"error": warm["first_error"]}))
        return
    print(json.dumps(asyncio.run(_load(args.url, args.concurrency, args.requests, args.seconds, body))))


# ---- raw in-process throughput ----------------------------------------------------------------------------


def raw_throughput(checkpoint: Path, batch: int, seconds: float) -> dict[str, Any]:
    """Images/s of the bare generator at each torch thread count worth trying; the best is the reference."""
    import torch

    from models import latents_for_seeds, load_checkpoint, to_uint8
    from service.codecs.png import encode_png_batch

    loaded = load_checkpoint(checkpoint)
    generator, z_dim = loaded.generator, loaded.metadata.z_dim

    def run(encode: bool) -> dict[str, Any]:
        seed, images, started = 0, 0, time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            z = latents_for_seeds(range(seed, seed + batch), z_dim)  # [B, z_dim]
            with torch.inference_mode():
                pixels = to_uint8(generator(z)).numpy()  # [B, H, W, C]
            if encode:
                encode_png_batch(pixels)
            seed += batch
            images += batch
        elapsed = time.perf_counter() - started
        return {"images": images, "seconds": round(elapsed, 3), "images_per_s": round(images / elapsed, 1)}

    by_threads: dict[str, Any] = {}
    for threads in sorted({torch.get_num_threads(), max(1, (os.cpu_count() or 1) - 1)}):
        torch.set_num_threads(threads)
        run(True)  # warm-up
        by_threads[str(threads)] = {"without_png": run(False), "with_png": run(True)}
    best = max(by_threads, key=lambda t: by_threads[t]["with_png"]["images_per_s"])
    return {"batch": batch, "by_torch_threads": by_threads, "best_torch_threads": int(best), **by_threads[best]}


# ---- orchestration ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train_small(out_dir: Path, iterations: int) -> Path:
    sys.path.insert(0, str(ROOT))
    from training import load_config, train

    config = load_config(ROOT / "configs" / "mnist5k.yaml", [f"train.iterations={iterations}", "train.sample_every=0"])
    return train(config, out_dir, device="cpu", progress=False)


def start_server(models_dir: Path, log: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [
        str(Path(sys.executable).parent / "wgan-serve"),
        "--models-dir",
        str(models_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WGAN_")}
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"wgan-serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise TimeoutError(f"wgan-serve was not ready:\n{log.read_text()}")


def run_load(url: str, concurrency: int, requests: int, seconds: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--load",
        url,
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        "--seconds",
        str(seconds),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a .safetensors checkpoint (default: train a small one)")
    parser.add_argument("--train-iterations", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0, help="time limit of each measurement")
    parser.add_argument("--requests", type=int, default=20_000, help="request budget of each service measurement")
    parser.add_argument("--batch", type=int, default=64, help="raw batch size, and the server's --max-batch-size")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra wgan-serve flag (repeatable)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    # Internal: the load generator's own process.
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        args.url = args.load
        load_main(args)
        return

    load_before = os.getloadavg()[0]
    server_flags = ["--max-batch-size", str(args.batch), *args.serve_arg]
    with tempfile.TemporaryDirectory(prefix="serve_bench_") as tmp:
        tmp_dir = Path(tmp)
        checkpoint = args.checkpoint or train_small(tmp_dir / "run", args.train_iterations)
        models_dir = tmp_dir / "models"
        models_dir.mkdir()
        shutil.copy(checkpoint, models_dir / "bench.safetensors")

        raw = raw_throughput(checkpoint, args.batch, args.seconds)
        proc, url = start_server(models_dir, tmp_dir / "serve.log", server_flags)
        try:
            import httpx

            model = httpx.get(f"{url}/v1/models/bench", timeout=5).json()
            service = {f"concurrency_{c}": run_load(url, c, args.requests, args.seconds) for c in (1, 64)}
            metrics = httpx.get(f"{url}/metrics", timeout=5).text
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)

    raw_png = raw["with_png"]["images_per_s"]
    result = {
        "benchmark": "serve_bench",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_1m_before_and_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "server_flags": server_flags,
        "checkpoint": {
            "path": str(args.checkpoint) if args.checkpoint else "trained by the benchmark (mnist5k config)",
            "kind": model["kind"],
            "z_dim": model["z_dim"],
            "shape": [model["channels"], model["height"], model["width"]],
            "device": model["device"],
        },
        "raw_in_process": raw,
        "service_sample_n1_png": service,
        "ratio_service_over_raw_with_png": {k: round(v["requests_per_s"] / raw_png, 3) for k, v in service.items()},
        "ratio_service_over_raw_without_png": {
            k: round(v["requests_per_s"] / raw["without_png"]["images_per_s"], 3) for k, v in service.items()
        },
        "mean_batch_size": _mean_batch(metrics),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


def _mean_batch(metrics_text: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(metrics_text):
        if family.name == "wgan_batch_size":
            total = {
                s.name: s.value
                for s in family.samples
                if s.labels.get("op") == "generate" and s.name != "wgan_batch_size_bucket"
            }
            count = total.get("wgan_batch_size_count", 0)
            return round(total["wgan_batch_size_sum"] / count, 2) if count else None
    return None


if __name__ == "__main__":
    main()
