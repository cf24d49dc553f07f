"""Errors the service raises where it detects a problem; `service.api.error_responses` turns them into HTTP responses.

Each class names the HTTP status and the machine-readable `code` it maps to, so the mapping lives in one
place but the code that detects a problem never builds a response itself.
"""

from __future__ import annotations

from typing import Any, ClassVar

# The most characters of a client's input (a model name, a path, a field name) an error message repeats.
ECHO_LIMIT = 100


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` as an error message may repeat it: cut to `limit` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


class ServiceError(Exception):
    """A failure to report to the client with the error envelope."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequestError(ServiceError):
    """The request is well-formed but asks for something this model or these limits cannot give."""

    status = 422
    code = "invalid_request"


class LimitExceededError(InvalidRequestError):
    code = "limit_exceeded"


class ModelNotFoundError(ServiceError):
    status = 404
    code = "model_not_found"


class NotReadyError(ServiceError):
    """Models are still loading, or the server is shutting down."""

    status = 503
    code = "not_ready"


class OverloadedError(ServiceError):
    """The model's queue is full."""

    status = 503
    code = "overloaded"


class QueueTimeoutError(ServiceError):
    """An item waited longer than its deadline and was not computed."""

    status = 504
    code = "queue_timeout"


class InferenceError(ServiceError):
    status = 500
    code = "inference_failed"


class UnauthorizedError(ServiceError):
    status = 401
    code = "unauthorized"


class AdminDisabledError(ServiceError):
    """The admin API was called on a server started without an admin key."""

    status = 403
    code = "admin_disabled"


class PayloadTooLargeError(ServiceError):
    status = 413
    code = "payload_too_large"


class NotAcceptableError(ServiceError):
    status = 406
    code = "not_acceptable"


class MalformedBodyError(ServiceError):
    status = 400
    code = "malformed_body"


class MalformedJsonError(MalformedBodyError):
    code = "malformed_json"


class UnsupportedMediaTypeError(ServiceError):
    status = 415
    code = "unsupported_media_type"


class ClientGoneError(ServiceError):
    """The client disconnected before its answer was ready (nobody reads this response)."""

    status = 499
    code = "client_closed_request"
