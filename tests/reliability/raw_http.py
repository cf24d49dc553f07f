"""HTTP/1.1 over a plain socket, for requests no well-behaved client would send, and a background check that the
server keeps answering ordinary requests meanwhile."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def error_code(self) -> str:
        envelope = json.loads(self.body)
        assert set(envelope) == {"error"} and {"code", "message"} <= set(envelope["error"]), envelope
        return str(envelope["error"]["code"])


def read_response(sock: socket.socket) -> RawResponse | None:
    """One response, or None when the server closed the connection without answering."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return RawResponse(status, headers, rest[:length])


def exchange(port: int, parts: Iterable[bytes], pause_s: float = 0.0, timeout_s: float = 30.0) -> RawResponse | None:
    """Send `parts` (sleeping `pause_s` between them, stopping early if the server answers or closes), then read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        for i, part in enumerate(parts):
            if i and pause_s:
                time.sleep(pause_s)
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        try:
            return read_response(sock)
        except ConnectionResetError:
            return None


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class ServingMeanwhile:
    statuses: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def assert_served(self) -> None:
        assert self.statuses, "no ordinary request completed while the hostile one was under way"
        assert not self.failures and set(self.statuses) == {200}, (self.statuses, self.failures)


@contextmanager
def serving_meanwhile(
    url: str, headers: dict[str, Any] | None = None, every_s: float = 0.1
) -> Iterator[ServingMeanwhile]:
    """Ordinary /v1/sample requests from a background thread for as long as the block runs."""
    result = ServingMeanwhile()
    stop = threading.Event()

    def loop() -> None:
        with httpx.Client(base_url=url, headers=headers or {}, timeout=30) as client:
            seed = 0
            while not stop.is_set():
                try:
                    result.statuses.append(client.post("/v1/sample", json={"seed": seed}).status_code)
                except httpx.HTTPError as exc:
                    result.failures.append(f"{type(exc).__name__}: {exc}")
                seed += 1
                stop.wait(every_s)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        time.sleep(every_s * 2)  # let at least one request complete after the hostile one
        stop.set()
        thread.join(60)
