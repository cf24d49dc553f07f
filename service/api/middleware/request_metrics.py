"""ASGI middleware counting requests and their latency by route template (never the raw path).

A request the app returned from without answering had its client close the connection first (the body
middleware gives up on a body whose sender left, and a route whose client left answers into a closed
connection). It is counted under status 499 (nginx's "client closed request"), on the route it was addressed
to, so a client going away never shows up as a server error. A request that raised is a 500.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import CLIENT_CLOSED, UNMATCHED_ENDPOINT, ServiceMetrics


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # the app's routes, to name the endpoint of a request that never reached its route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except BaseException:
            status = status or 500
            raise
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or self._addressed_endpoint(scope)
            self.metrics.observe_request(endpoint, status or CLIENT_CLOSED, time.perf_counter() - started)

    def _addressed_endpoint(self, scope: Scope) -> str:
        """The route template the request's path and method match, for requests answered before routing."""
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                path = getattr(route, "path", None)
                if isinstance(path, str):
                    return path
        return UNMATCHED_ENDPOINT
