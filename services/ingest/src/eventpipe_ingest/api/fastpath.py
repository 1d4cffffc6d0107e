"""POST /ingest straight to its route function, past the framework's per-request work.

Every ingest request went through Starlette's exception middleware, FastAPI's own exit-stack middleware, the
router's matching of each route in turn and FastAPI's request handler (which solves the route's dependencies even
when there are none). The route takes the `Request` only and returns a `Response` it built itself, so none of
that work changes its answer: this pure ASGI middleware calls the route function directly for `POST` on the
exact path, answers its errors with the app's own exception handlers (the same problem+json bodies), and counts
the request as `RequestMetricsMiddleware` does. Every other request (other paths and methods, the path with a
trailing slash) takes the framework's way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from eventpipe_ingest.metrics import IngestMetrics

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


class RouteFastPath:
    """Serves `POST <route.path>` with `route.endpoint`; passes everything else on to `app`."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI, route: APIRoute, metrics: IngestMetrics) -> None:
        self.app = app
        self.fastapi = fastapi
        self.route = route
        self.path = route.path
        self.endpoint: Endpoint = route.endpoint
        self.metrics = metrics
        self.label = route.path
        # The request counter's child per status: `labels()` checks and looks up the three label values on
        # every call; the children are the same objects either way.
        self._counted: dict[int, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        scope["endpoint"] = self.endpoint
        status = 500
        try:
            request = Request(scope, receive, send)
            try:
                response = await self.endpoint(request)
            except Exception as exc:
                handler = self._handler(exc)
                if handler is None:
                    raise  # to Starlette's ServerErrorMiddleware: the app's 500 handler answers, as before
                response = await handler(request, exc)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            counter = self._counted.get(status)
            if counter is None:
                counter = self._counted[status] = self.metrics.requests.labels(self.label, "POST", str(status))
            counter.inc()

    def _handler(self, exc: Exception) -> Handler | None:
        """The app's handler for `exc` as Starlette's exception middleware picks it: by the exception's classes,
        most specific first; the handler of `Exception` (500) is the server error middleware's, not this one's."""
        handlers = self.fastapi.exception_handlers
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            handler = handlers.get(cls)
            if handler is not None:
                return handler  # type: ignore[return-value]  # Starlette types handlers loosely
        return None

