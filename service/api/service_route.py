"""`ServiceRoute`: the one route class of the API. Every request passes through it, `POST /v1/sample` included.

FastAPI's own request handler solves a dependency graph and validates the body for every request, which at one
image per request costs more event-loop time than the rest of the request together. The routes here need none of
that machinery, so this class hands each endpoint exactly what it takes:

- the key check: `/v1/*` needs an API key when the server has keys, `/v1/admin/*` needs the admin key
  (`service.api.auth.required_key` is the one rule; the OpenAPI document states it from the same rule);
- the JSON body, parsed with orjson and validated by the endpoint's pydantic model (`json_body`), errors raised
  as the same validation errors FastAPI raises;
- the path parameters, as strings;
- the `Request` itself (the runtime is `runtime_of(request)`).

Endpoints are declared with FastAPI's decorators, so `/openapi.json` is generated from their signatures as usual.
FastAPI dependencies, query, header and cookie parameters are refused when a route is built: this class would
not run them, and a rule that silently does not run is worse than none.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from service.api.auth import KeyRequirement, check_key, required_key
from service.api.request_state import header, runtime_of
from service.errors import ClientGoneError, MalformedJsonError, UnsupportedMediaTypeError, clip

M = TypeVar("M", bound=BaseModel)
Endpoint = Callable[..., Coroutine[Any, Any, Response]]


def is_json(content_type: str | None) -> bool:
    """JSON media types (`application/json`, `*+json`); a request without a Content-Type is read as JSON."""
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def validation_error(exc: ValidationError, prefix: tuple[str, ...] = ("body",)) -> RequestValidationError:
    """A pydantic error as the request validation error the envelope handler turns into a 422."""
    return RequestValidationError([{**e, "loc": prefix + tuple(e["loc"])} for e in exc.errors(include_url=False)])


async def whole_body(receive: Receive) -> bytes:
    """The request body, read message by message (`BodyLimitMiddleware` has already bounded its size and time)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGoneError("the client closed the connection while sending the body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def json_body(request: Request, model: type[M]) -> M:
    """The request's JSON body validated by `model`: 422 when missing or invalid, 415 for another media type,
    400 when it is not JSON at all."""
    raw = await whole_body(request.receive)
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    content_type = header(request, b"content-type")
    if not is_json(content_type):
        raise UnsupportedMediaTypeError(
            f"send the body as JSON with 'Content-Type: application/json' (got {clip(content_type or '')!r})"
        )
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJsonError(f"the request body is not valid JSON: {exc.msg}", {"position": exc.pos}) from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from exc


class ServiceRoute(APIRoute):
    """An API route whose endpoint takes the `Request`, its path parameters and at most one JSON body model."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        handler = self.get_route_handler()

        # FastAPI's adapter adds two exit stacks per request for dependencies with `yield`, and Starlette's a
        # second layer of exception handling; this route runs no dependencies, and what it raises reaches the
        # app's exception handlers (the error envelope) through Starlette's ExceptionMiddleware.
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            response = await handler(Request(scope, receive, send))
            await response(scope, receive, send)

        self.app = app

    # FastAPI's APIRoute looks up an included-router context on every match and call; the service adds its
    # routes to the app directly (`ServiceApp.add_routes`), so Starlette's plain matching is the whole story.
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = Route.matches(self, scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await Route.handle(self, scope, receive, send)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Called by FastAPI when the route is built (and again when a router is included)."""
        path, endpoint, dependant = self.path, self.endpoint, self.dependant
        if dependant.dependencies or dependant.query_params or dependant.header_params or dependant.cookie_params:
            raise TypeError(
                f"{path}: a ServiceRoute endpoint takes the Request, path parameters and one JSON body; "
                "it runs no FastAPI dependencies and reads no query, header or cookie parameters"
            )
        if not inspect.iscoroutinefunction(endpoint):
            raise TypeError(f"{path}: endpoints are `async def` (a plain def would block the event loop)")
        if len(dependant.body_params) > 1:
            raise TypeError(f"{path}: at most one body model per endpoint")
        body_param: tuple[str, type[BaseModel]] | None = None
        if dependant.body_params:
            field = dependant.body_params[0]
            model = field.field_info.annotation
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise TypeError(f"{path}: the body parameter must be a pydantic model")
            body_param = (field.name, model)
        request_param = dependant.request_param_name
        key = required_key(path)
        call: Endpoint = endpoint

        async def handle(request: Request) -> Response:
            if key is not KeyRequirement.NONE:
                check_key(key, request, runtime_of(request))
            kwargs: dict[str, Any] = dict(request.path_params)
            if request_param is not None:
                kwargs[request_param] = request
            if body_param is not None:
                name, model = body_param
                kwargs[name] = await json_body(request, model)
            return await call(**kwargs)

        return handle
