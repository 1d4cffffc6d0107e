"""The API's request and response bodies (pydantic): the OpenAPI spec is the contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventpipe_jobs.schema import JobState
from pydantic import BaseModel, Field


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


class IngestRefused(BaseModel):
    """Whole-request refusal (reject mode `whole`): nothing was published."""

    code: str
    message: str
    received: int
    rejected: int
    rejects: list[RejectOut]


class ErrorBody(BaseModel):
    code: str
    message: str
    line: int | None = None
    column: int | None = None
    job_id: str | None = None
    details: dict[str, Any] | None = None


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
