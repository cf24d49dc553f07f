"""A load generator for `/v1/sample`, run as its own process: `python -m tests.reliability.load_generator ...`.

It sends `--requests` seeded requests over `--concurrency` keep-alive connections to a server on the loopback
interface only, and writes one JSON line per request to `--out`: the seeds asked for, the status, whether a 503
carried `Retry-After`, the images' base64 data (200) or the error code, and the latency. It checks nothing
itself: the caller compares every image with its seed. Bounded in count (`--requests`) and in time: each
request may take `--request-timeout` seconds (then it is recorded as hung) and the whole run `--max-seconds`
(then the rest are not sent and the run says so).

Request i asks for seeds starting at `--first-seed + 4 i`: one image, or three for every fifth request, so the
seeds of different requests never overlap and a response given to the wrong request cannot go unnoticed.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

SEED_STRIDE = 4


def request_seeds(i: int, first_seed: int) -> list[int]:
    base = first_seed + SEED_STRIDE * i
    return [base, base + 1, base + 2] if i % 5 == 4 else [base]


def _loopback_only(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"load_generator: refusing {url}: only loopback addresses are allowed")


async def _one(client: httpx.AsyncClient, i: int, args: argparse.Namespace) -> dict[str, Any]:
    seeds = request_seeds(i, args.first_seed)
    body: dict[str, Any] = {"seed": seeds[0], "n": len(seeds)}
    if args.model:
        body["model"] = args.model
    record: dict[str, Any] = {"i": i, "seeds": seeds}
    started = time.perf_counter()
    try:
        response = await asyncio.wait_for(client.post("/v1/sample", json=body), args.request_timeout)
    except TimeoutError:
        record.update(status=None, outcome="hung")
    except httpx.HTTPError as exc:
        record.update(status=None, outcome="transport_error", error=f"{type(exc).__name__}: {exc}")
    else:
        record["status"] = response.status_code
        if response.status_code == 200:
            payload = response.json()
            record["images"] = [[item["seed"], item["data"]] for item in payload["images"]]
        else:
            record["retry_after"] = response.headers.get("retry-after")
            try:
                record["code"] = response.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                record["code"] = None
                record["body"] = response.text[:200]
    record["seconds"] = round(time.perf_counter() - started, 4)
    return record


async def run(args: argparse.Namespace) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    next_index = 0
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + args.max_seconds
    # Timeouts are enforced per request above; httpx's own must never fire first.
    timeout = httpx.Timeout(args.request_timeout + 5)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=args.url, limits=limits, headers=headers, timeout=timeout) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < args.requests and time.monotonic() < deadline:
                i = next_index
                next_index += 1
                records.append(await _one(client, i, args))

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    records.sort(key=lambda r: r["i"])
    with Path(args.out).open("w") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
    return {
        "requests_planned": args.requests,
        "requests_sent": len(records),
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(records) / elapsed, 1) if elapsed > 0 else None,
        "out_of_time": len(records) < args.requests,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="server base URL (loopback only)")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--first-seed", type=int, default=1_000_000)
    parser.add_argument("--model", default=None)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--request-timeout", type=float, default=60.0, help="seconds before a request counts as hung")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="the whole run stops sending after this")
    parser.add_argument("--out", required=True, help="JSON lines, one per request")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be positive")
    _loopback_only(args.url)
    summary = asyncio.run(run(args))
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
