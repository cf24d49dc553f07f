"""uvicorn's httptools protocol with limits on the request head and answers in the API's error envelope.

uvicorn reads request lines and headers without a size limit, and waits for them without a deadline. Here:
- a request line plus headers over `max_header_bytes`, or more than `max_headers` header fields, is answered
  431 and the connection closed;
- headers that have not all arrived `header_timeout_s` after the request began (a client trickling bytes to
  hold connections open) are answered 408 and the connection closed; a connection that sends nothing at all in
  that time is closed;
- anything that is not valid HTTP/1.1 (a bad Content-Length, say) is answered 400 with the error envelope
  rather than uvicorn's plain text; so is an HTTP/1.1 request without exactly one Host header (RFC 9112, 3.2);
- the service has no WebSocket endpoint and runs uvicorn with `ws="none"`: a request asking to upgrade is answered
  as the plain HTTP request it also is (the Upgrade header is ignored, as RFC 9110 allows), and its connection is
  closed after the answer, since what the client sends next may not be HTTP;
- an idle keep-alive connection is not closed at the keep-alive timeout while bytes of a request wait unread in the
  kernel's buffer (the timer can fire in the same turn of the loop as the bytes arrive, before they are read:
  closing then resets the connection under a request that did arrive in time);
- while the server drains, the keep-alive timer closes nothing: the drain decides when idle connections close.
"""

from __future__ import annotations

import asyncio
import fcntl
import struct
import termios
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.api.error_responses import error_body


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; httptools turns it into a parser error."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    max_header_bytes: ClassVar[int] = 64 * 1024
    max_headers: ClassVar[int] = 100
    header_timeout_s: ClassVar[float] = 30.0

    _header_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _head_fields = 0
    _began = False
    _refusal: tuple[int, str, str] | None = None
    _closing = False  # the server is shutting down: close after the next answer
    _idle_since: float | None = None  # loop time of the last answer (or of the connection), None once bytes arrive

    # The parameter is narrowed from asyncio's BaseTransport to Transport, as uvicorn's own connection_made does.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        super().connection_made(transport)
        self._idle_since = self.loop.time()
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        self._idle_since = None  # a request may be arriving: not idle until it has been answered
        super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.pipeline and not self.transport.is_closing():
            self._idle_since = self.loop.time()

    def close_after_answer(self) -> None:
        """Shutting down: the answer not yet begun, and any answer from now on, carries `Connection: close`.

        An answer whose head is already on the wire said keep-alive: closing after it would close a connection the
        client may already be sending its next request on. It ends as it began; the connection's next request is
        answered with `Connection: close`, or the connection goes quiet and the drain closes it."""
        self._closing = True
        if self.cycle is not None and not self.cycle.response_started:
            self.cycle.keep_alive = False

    def close_if_quiet(self, quiet_s: float) -> bool:
        """Close the connection if it has answered everything it received and nothing arrived for `quiet_s`
        seconds, not even bytes still unread in the kernel's buffer; whether it is closed now."""
        if self.transport.is_closing():
            return True
        busy = self.pipeline or (self.cycle is not None and not self.cycle.response_complete)
        if busy or self._idle_since is None or self.loop.time() - self._idle_since < quiet_s or self._unread():
            return False
        self.transport.close()
        return True

    def timeout_keep_alive_handler(self) -> None:
        """uvicorn's keep-alive timer: close an idle connection, unless a request has arrived unread or the server
        is draining (then `close_if_quiet` decides, with the drain's own wait)."""
        if self._closing:
            return
        if self._unread():
            # Read in this turn of the loop: `data_received` cancels this timer, and the answer arms a new one.
            timeout_s = self.timeout_keep_alive
            self.timeout_keep_alive_task = self.loop.call_later(timeout_s, self.timeout_keep_alive_handler)
            return
        super().timeout_keep_alive_handler()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._began = True
        self._head_bytes = 0
        self._head_fields = 0
        if self._header_timer is None:
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        if self._head_fields > self.max_headers:
            self._refuse(431, "too_many_headers", f"the request has more than {self.max_headers} header fields")
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        hosts = 0
        for name, _ in self.headers:
            if name == b"host":
                hosts += 1
        if hosts != 1 and self.parser.get_http_version() == "1.1":
            self._refuse(400, "missing_host", "an HTTP/1.1 request needs exactly one Host header")
        super().on_headers_complete()
        if self._closing or self.parser.should_upgrade():
            self.cycle.keep_alive = False  # the client may switch protocols after its request: close after the answer

    def _unsupported_upgrade_warning(self) -> None:
        """uvicorn warns about a missing WebSocket library; here upgrades are off on purpose and simply ignored."""

    def send_400_response(self, msg: str) -> None:
        """Every parser failure ends here (uvicorn calls it): the envelope, then close."""
        status, code, message = self._refusal or (400, "malformed_request", "the request is not valid HTTP/1.1")
        self._refusal = None
        self._write_error_and_close(status, code, message)

    # ---- helpers ------------------------------------------------------------------------------------------------

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            self._refuse(
                431, "headers_too_large", f"the request line and headers are larger than {self.max_header_bytes} bytes"
            )

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._refusal = (status, code, message)
        raise _Refused(message)

    def _write_error_and_close(self, status: int, code: str, message: str) -> None:
        if self.transport.is_closing():
            return
        body = error_body(code, message)
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
            ]
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _unread(self) -> bool:
        """Whether bytes have arrived that the loop has not handed to `data_received` yet."""
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        try:
            pending = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return False  # the socket is gone
        return bool(struct.unpack("i", pending)[0])

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a pipelined request is being answered: close after it
            return
        if not self._began:
            self.transport.close()  # nothing was sent at all
            return
        self._write_error_and_close(
            408, "request_timeout", f"the request headers did not arrive within {self.header_timeout_s:g} s"
        )


def guarded_protocol(max_header_bytes: int, max_headers: int, header_timeout_s: float) -> type[HttpToolsProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` with these limits."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"max_header_bytes": max_header_bytes, "max_headers": max_headers, "header_timeout_s": header_timeout_s},
    )
