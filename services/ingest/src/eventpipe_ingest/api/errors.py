"""Answers other than 2xx: `ApiError` raised anywhere in a request, turned into a response and logged once."""

from __future__ import annotations

from typing import Any

from eventpipe_common.errors import EventpipeError
from eventpipe_common.logging import get_logger
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from eventpipe_ingest.models import ErrorBody, IngestRefused

# component bound here too: a server run in a thread of its own (tests) does not share the contextvars of the
# thread that configured logging.
log = get_logger(component="ingest")


class ApiError(Exception):
    """An answer other than 2xx, with its status, body and headers."""

    def __init__(self, status: int, body: ErrorBody | IngestRefused, headers: dict[str, str] | None = None) -> None:
        super().__init__(body.message)
        self.status = status
        self.body = body
        self.headers = headers or {}


def from_error(status: int, exc: EventpipeError, headers: dict[str, str] | None = None) -> ApiError:
    """An ApiError carrying an EventpipeError's code, message and details."""
    details = {k: v for k, v in exc.details.items() if k not in ("line", "column", "job_id")}
    return ApiError(status, ErrorBody(code=exc.code, message=exc.message, line=exc.details.get("line"),
                                      column=exc.details.get("column"), details=details or None), headers)


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


async def api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    cause = exc.__cause__
    log_failure(request, exc.status, exc.body.code, exc.body.message,
                f"{type(cause).__name__}: {cause}"[:500] if cause is not None else exc.body.code,
                getattr(exc.body, "job_id", None))
    return JSONResponse(exc.body.model_dump(exclude_none=True), status_code=exc.status, headers=exc.headers)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    log_failure(request, 500, "internal_error", "an unexpected error", f"{type(exc).__name__}: {exc}"[:500],
                None, exc_info=exc)
    return JSONResponse({"code": "internal_error", "message": "an unexpected error; it is logged"},
                        status_code=500)


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(Exception, internal_error)
