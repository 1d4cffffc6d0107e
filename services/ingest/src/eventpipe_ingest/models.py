"""The API's request and response bodies (pydantic): the OpenAPI spec is the contract."""

from __future__ import annotations

from datetime import datetime

from eventpipe_common.jobstore import JobState
from pydantic import BaseModel, ConfigDict, Field


class ViolationOut(BaseModel):
    field: str
    rule: str
    message: str


class RejectOut(BaseModel):
    line: int = Field(description="1-based line (NDJSON/CSV data line) or element index (JSON array).")
    reason: str
    violations: list[ViolationOut] = Field(default_factory=list)


class IngestAccepted(BaseModel):
    job_id: str
    state: JobState
    received: int = Field(description="Events (lines, elements) in the request.")
    accepted: int = Field(description="Events published to the stream and acknowledged.")
    rejected: int
    duplicates: int = Field(description="Valid events dropped: an earlier event of the request had their event_id.")
    rejects: list[RejectOut]


class FieldError(BaseModel):
    """One reason FastAPI refused the request before the route ran (422 `invalid_request`)."""

    loc: list[str | int] = Field(description="Where: e.g. [\"path\", \"job_id\"].")
    message: str
    type: str


class Problem(BaseModel):
    """Every answer that is not 2xx: RFC 9457 problem details, as `application/problem+json`.

    The standard members, then `code` (the last part of `type`, for programs) and the extensions that apply to
    the problem: `line`/`column` (400 parse_error), `job_id` (503 with a job written failed, 404 unknown job),
    `limit` (413, some 400s), `errors` (422 invalid_request), `received`/`rejected`/`rejects` (422 invalid_events),
    `checks` (503 from /ready).
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI naming the kind of problem; the table in services/ingest/README.md "
                                  "(#problem-<code>) explains each.")
    title: str = Field(description="The kind of problem, in words (the same for every occurrence of a type).")
    status: int = Field(description="The HTTP status of the answer.")
    detail: str = Field(description="This occurrence, in words.")
    instance: str = Field(description="The path of the request that got the answer.")
    code: str = Field(description="A short machine-readable name of the type, e.g. parse_error.")
    line: int | None = Field(default=None, description="The body's line (or array element) the problem is at.")
    column: int | None = None
    job_id: str | None = None
    limit: int | None = Field(default=None, description="The limit the request went over.")
    errors: list[FieldError] | None = None
    received: int | None = None
    rejected: int | None = None
    rejects: list[RejectOut] | None = None
    checks: dict[str, str] | None = Field(default=None, description="503 not_ready: each readiness check.")


class JobStatus(BaseModel):
    job_id: str
    state: JobState
    received: int
    accepted: int
    rejected: int
    duplicates: int
    committed: int
    reason: str | None
    created_at: datetime
    updated_at: datetime


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]
