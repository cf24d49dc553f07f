"""The error envelope `{"error": {"code", "message", "details"?}}` for every failure, and the handlers that make it.

Errors are raised where they are detected (as `ServiceError` subclasses, FastAPI validation errors or
Starlette HTTP errors) and turned into responses only here. Unexpected exceptions become a 500 envelope with
no stack trace; the trace goes to the log. The handlers are `async def`, so Starlette runs them on the event loop
rather than sending each error through its thread pool.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Send

from service.api.json_responses import dumps
from service.api.schemas import ErrorResponse
from service.errors import ServiceError, UnauthorizedError, clip

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "malformed_body",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    408: "request_timeout",
    431: "headers_too_large",
    503: "unavailable",
}


# A backstop for messages that repeat input nobody clipped: no error message is longer than this.
_MAX_MESSAGE = 1000


def error_body(code: str, message: str, details: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": clip(message, _MAX_MESSAGE)}
    if details is not None:
        error["details"] = details
    return dumps({"error": error})


async def send_error(
    send: Send, status: int, code: str, message: str, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer with the envelope straight through ASGI (for middleware that refuses before the app runs)."""
    body = error_body(code, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": body})


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        error_body(code, message, details), status_code=status, headers=headers, media_type="application/json"
    )


def _location(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return clip(".".join(parts)) or "body"  # an unknown field's name is the client's input


def _validation_details(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Field, message and type of each problem; the offending input is left out (it may be megabytes of base64)."""
    return [
        {"field": _location(e.get("loc", ())), "message": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in errors
    ]


async def _handle_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc.errors())
    first = details[0] if details else {"field": "body", "message": "invalid"}
    message = f"invalid request: {first['field']}: {first['message']}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more)"
    return error_response(422, "validation_error", message, details)


async def _handle_service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    runtime = getattr(request.state, "runtime", None)
    retry_after_s = runtime.settings.retry_after_s if runtime is not None else 1
    headers: dict[str, str] = {}
    if exc.status == 503:
        headers["Retry-After"] = str(retry_after_s)
    if isinstance(exc, UnauthorizedError):
        headers["WWW-Authenticate"] = "Bearer"
    if exc.status >= 500 and exc.status != 503:
        log.warning("%s %s -> %d %s: %s", request.method, request.url.path, exc.status, exc.code, exc.message)
    return error_response(exc.status, exc.code, exc.message, exc.details, headers or None)


async def _handle_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        message = f"no route {clip(request.url.path)}"
    elif exc.status_code == 405:
        message = f"method {clip(request.method)} is not allowed on {clip(request.url.path)}"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}) or None)


async def _handle_unexpected(request: Request, exc: Exception) -> Response:
    """A 500 envelope for an exception nobody expected; the trace goes to the log, never to the client."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "the server failed to handle this request; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(ServiceError, _handle_service_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(Exception, _handle_unexpected)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error statuses, all with the envelope schema."""
    descriptions = {
        400: "malformed body",
        401: "missing or wrong API key",
        403: "the admin API is off (no admin key configured)",
        404: "unknown model",
        406: "the Accept header asks for something this request cannot return",
        408: "the request body did not arrive in time",
        413: "payload too large",
        415: "unsupported image",
        422: "validation error",
        499: "client closed the request",
        503: "loading, draining or overloaded (see Retry-After)",
        504: "timed out in the queue",
    }
    return {s: {"model": ErrorResponse, "description": descriptions.get(s, "error")} for s in statuses}
