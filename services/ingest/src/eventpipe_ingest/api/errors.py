"""Answers other than 2xx, all in one shape: RFC 9457 problem details (`application/problem+json`).

`ApiError` raised anywhere in a request, FastAPI's own 404/405/422 and any unexpected error become a `Problem`
(models.py): `type` (a URI naming the kind of problem, documented in services/ingest/README.md), `title`,
`status`, `detail`, `instance` (the request's path), `code` (the last part of `type`) and the extensions that
apply (`line`, `column`, `job_id`, `errors`, `limit`, `checks`, and for a refusal in reject mode `whole`
`received`, `rejected`, `rejects`). Each is logged once (Property 38).
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import orjson
from eventpipe_common.errors import EventpipeError
from eventpipe_common.logging import get_logger
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

# component bound here too: a server run in a thread of its own (tests) does not share the contextvars of the
# thread that configured logging.
log = get_logger(component="ingest")

PROBLEM_JSON = "application/problem+json"
# Where each problem type is explained: the README's table, one anchor per code.
PROBLEM_TYPES = "https://github.com/eventpipe/eventpipe/blob/main/services/ingest/README.md#problem-"

# One title per problem type (RFC 9457: the title does not change from occurrence to occurrence).
TITLES = {
    "unauthorized": "A valid API key is required",
    "too_many_requests": "Too many requests in flight",
    "unsupported_media_type": "Unsupported Content-Type or Content-Encoding",
    "payload_too_large": "The body is over the limit",
    "bad_request": "The body cannot be read",
    "parse_error": "The body cannot be parsed",
    "empty_body": "The body holds no events",
    "invalid_events": "Some events are invalid; none was taken",
    "invalid_request": "The request does not match the API",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "publish_timeout": "The stream did not acknowledge in time",
    "publish_failed": "The stream refused the events",
    "dependency_unavailable": "The job store is unavailable",
    "not_ready": "The service is not ready",
    "internal_error": "Unexpected error",
}


# How far a request's body was read (request.scope[BODY_STATE], set by the ingest route's read_body).
BODY_STATE = "eventpipe.body"
BODY_STARTED = "started"
BODY_DONE = "done"
# A refused request's unread body is read and dropped up to this many bytes, for at most this long.
DISCARD_MAX_BYTES = 64 * 1024 * 1024
DISCARD_SECONDS = 10.0


def problem_type(code: str) -> str:
    return PROBLEM_TYPES + code.replace("_", "-")


class ApiError(Exception):
    """An answer other than 2xx: its status, code, detail, headers, and the problem's extension members."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None,
                 **extensions: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extensions = {k: v for k, v in extensions.items() if v is not None}


def from_error(status: int, exc: EventpipeError, headers: dict[str, str] | None = None) -> ApiError:
    """An ApiError carrying an EventpipeError's code, message and details (e.g. `limit`) as extensions."""
    return ApiError(status, exc.code, exc.message, headers, **exc.details)


def problem(request: Request, status: int, code: str, detail: str, **extensions: Any) -> dict[str, Any]:
    """The problem details object of an answer."""
    return {"type": problem_type(code), "title": TITLES.get(code) or HTTPStatus(status).phrase, "status": status,
            "detail": detail, "instance": request.url.path, "code": code, **extensions}


def problem_response(request: Request, status: int, code: str, detail: str, headers: dict[str, str] | None = None,
                     **extensions: Any) -> Response:
    body = problem(request, status, code, detail, **extensions)
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=PROBLEM_JSON)


def log_failure(request: Request, status: int, code: str, reason: str, error: str, job_id: str | None,
                **extra: Any) -> None:
    """Property 38: every answer that is not a success is logged once, with the component (bound to `log`), the
    request (method, path, peer, and the job id once one was given), the reason the client was told and the error
    behind it (the exception, or the answer's code when the refusal is the error). 4xx at info (the client's
    doing), 5xx at error."""
    job_id = job_id or getattr(request.state, "job_id", None)
    peer = f"{request.client.host}:{request.client.port}" if request.client else None
    fields = {"status": status, "code": code, "reason": reason, "error": error, "job_id": job_id,
              "request": f"{request.method} {request.url.path}", "peer": peer, **extra}
    if status >= 500:
        log.error("request failed", **fields)
    else:
        log.info("request refused", **fields)


async def settle_body(request: Request, headers: dict[str, str] | None) -> dict[str, str] | None:
    """Before refusing a request whose body is not read to its end: read and drop the rest, so the client, still
    sending, finishes and reads the answer (a server that answers and closes with unread bytes resets the
    connection: the client sees the reset, not the answer). Not when the client sent `Expect: 100-continue` and
    nothing was read (it waits for `100 Continue`, which only reading sends, and sends no body), nor past
    DISCARD_MAX_BYTES or DISCARD_SECONDS: then the answer closes the connection (`Connection: close`)."""
    state = request.scope.get(BODY_STATE)
    if state == BODY_DONE or request.method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        return headers
    close = {**(headers or {}), "Connection": "close"}
    if state is None and request.headers.get("expect", "").lower() == "100-continue":
        return close
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DISCARD_MAX_BYTES:
        return close
    budget = DISCARD_MAX_BYTES
    try:
        async with asyncio.timeout(DISCARD_SECONDS):
            while budget >= 0:
                message = await request.receive()
                if message["type"] != "http.request":
                    return close
                budget -= len(message.get("body", b""))
                if not message.get("more_body", False):
                    request.scope[BODY_STATE] = BODY_DONE
                    return headers
    except TimeoutError:
        return close
    return close


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    cause = exc.__cause__
    log_failure(request, exc.status, exc.code, exc.detail,
                f"{type(cause).__name__}: {cause}"[:500] if cause is not None else exc.code,
                exc.extensions.get("job_id"))
    headers = await settle_body(request, exc.headers)
    return problem_response(request, exc.status, exc.code, exc.detail, headers, **exc.extensions)


HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's and Starlette's own answers (unknown path 404, wrong method 405) in the same shape."""
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_"))
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such path: {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    log_failure(request, exc.status_code, code, detail, code, None)
    headers = await settle_body(request, dict(exc.headers or {}))
    return problem_response(request, exc.status_code, code, detail, headers)


async def validation_error(request: Request, exc: Exception) -> Response:
    """A request FastAPI refuses before the route runs (e.g. a job id over 64 characters): 422, and each
    error with where (`loc`), what (`message`) and its kind (`type`)."""
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": [str(p) if not isinstance(p, int) else p for p in e.get("loc", ())],
               "message": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in exc.errors()]
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['message']}" for e in errors) or "invalid request"
    log_failure(request, 422, "invalid_request", detail, "invalid_request", None)
    return problem_response(request, 422, "invalid_request", detail, errors=errors)


async def internal_error(request: Request, exc: Exception) -> Response:
    log_failure(request, 500, "internal_error", "an unexpected error", f"{type(exc).__name__}: {exc}"[:500],
                None, exc_info=exc)
    return problem_response(request, 500, "internal_error", "an unexpected error; it is logged")


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)


def problem_responses_in_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI spec with every error answer's body as `application/problem+json` (FastAPI declares the
    models of `responses` as application/json)."""
    for path in spec.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")
    return spec
