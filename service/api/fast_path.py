"""A lean ASGI path for the common `POST /v1/sample`, in front of the FastAPI app.

At one image per request most of the server's time goes to routing, dependency solving, request validation and
the middleware stack rather than to the forward pass. This path answers the plain case directly: a JSON body
with a declared length within the limit, PNG (or no format), no grid, the API key (when keys are set) in a
`Bearer` header. It parses the body with orjson, validates it with the same `SampleRequest` model, and runs the
route's own `answer_sample` (seeds, engine, renderer, disconnect watch); it keeps what the middlewares give:
request metrics, drain accounting, the body's byte and time limits.

Everything else is handed to the full app unchanged, the body replayed when it was already read, so every
error (bad JSON, unknown fields, a missing key, a wrong content type, ...) is the full app's own response.
Errors raised after validation (unknown model, limits, a full queue, a deadline, a client that left) get the
same envelope through `service_error_response`. A request handed over stays counted in flight from its start,
as the full app's drain middleware would have counted it.
"""

from __future__ import annotations

import time

import orjson
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.auth import bearer_key_accepted
from service.api.middleware.body_limit import BodyRefusal, content_length, read_body, replay
from service.api.middleware.drain_gate import COUNTED_IN_FLIGHT
from service.api.disconnect import until_disconnected
from service.api.error_responses import service_error_response, unexpected_error_response
from service.api.routes.sample import SAMPLE_PATH, answer_sample
from service.api.schemas import SampleRequest
from service.process.drain import Drain
from service.errors import ServiceError
from service.metrics import UNMATCHED_ENDPOINT, ServiceMetrics
from service.runtime import ServiceRuntime

_JSON = b"application/json"


class SampleFastPath:
    """An ASGI app that answers plain `POST /v1/sample` requests itself and passes everything else to `app`."""

    def __init__(
        self, app: ASGIApp, metrics: ServiceMetrics, drain: Drain, max_body_bytes: int, read_timeout_s: float
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.drain = drain
        self.max_body_bytes = max_body_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != SAMPLE_PATH or scope["method"] != "POST" or self.drain.draining:
            await self.app(scope, receive, send)
            return
        state = scope.get("state")
        runtime = state.get("runtime") if state else None
        if not isinstance(runtime, ServiceRuntime):
            await self.app(scope, receive, send)
            return
        plain, accept = self._plain_head(scope, runtime.api_keys)
        if not plain:
            await self.app(scope, receive, send)
            return
        await self._serve(scope, receive, send, runtime, accept)

    def _plain_head(self, scope: Scope, keys: list[bytes]) -> tuple[bool, str | None]:
        """Whether the head allows the lean path (JSON, a declared length within the limit, a valid key); Accept."""
        declared = content_length(scope)
        if not declared or declared > self.max_body_bytes:
            return False, None
        content_type: bytes | None = None
        accept: str | None = None
        authorization: str | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value if content_type is None else content_type
            elif name == b"accept":
                accept = value.decode("latin-1") if accept is None else accept
            elif name == b"authorization":
                authorization = value.decode("latin-1") if authorization is None else authorization
        if content_type is None or content_type.split(b";", 1)[0].strip().lower() != _JSON:
            return False, None
        return bearer_key_accepted(authorization, keys), accept

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, runtime: ServiceRuntime, accept: str | None
    ) -> None:
        """Answer the request, or hand it to the full app (body replayed) when it is not the plain valid case."""
        started = time.perf_counter()
        endpoint, status = UNMATCHED_ENDPOINT, 500  # as the metrics middleware counts what fails before routing
        handed_over = False
        self.drain.enter()
        try:
            body = await read_body(receive, self.max_body_bytes, self.read_timeout_s)
            if isinstance(body, BodyRefusal):
                status = body.status or status
                await body.answer(send)
                return
            request = plain_sample_request(body)
            if request is None:
                handed_over = True
                scope[COUNTED_IN_FLIGHT] = True
                await self.app(scope, replay(body, receive), send)
                return
            endpoint = SAMPLE_PATH
            try:
                response = await _respond(runtime, request, accept, receive)
            except Exception as exc:  # in front of FastAPI's own error layer: answer as it would
                response = unexpected_error_response(exc, "POST", SAMPLE_PATH)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            self.drain.leave()
            if not handed_over:  # the full app's metrics count a request handed to it
                self.metrics.observe_request(endpoint, status, time.perf_counter() - started)


def plain_sample_request(body: bytes) -> SampleRequest | None:
    """The request when `body` is a valid PNG sampling request without a grid; None for anything else."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict:
        return None
    try:
        request = SampleRequest.model_validate(data)
    except ValidationError:
        return None
    if request.grid or request.format not in (None, "png"):
        return None
    return request


async def _respond(runtime: ServiceRuntime, request: SampleRequest, accept: str | None, receive: Receive) -> Response:
    try:
        answer = await answer_sample(runtime, request, accept, until_disconnected(receive))
    except ServiceError as exc:
        return service_error_response(exc, runtime.settings.retry_after_s, "POST", SAMPLE_PATH)
    return answer.response()
