"""What a job is: its states, its row, the three tables of the store, and the one rule that moves a job's state.

States::

    published --record_committed (committed >= accepted)--> committed
    failed    --record_committed (committed >= accepted)--> committed

The ingest service writes each job once, after Kinesis answered: ``published`` (every record acknowledged),
``committed`` at once when nothing was left to publish (every event rejected or a duplicate), or ``failed`` with
its reason. ``failed`` means that some events cannot land; it is final only then: a job whose committed count
still reaches its accepted count (a publish that timed out on the client's side but landed) moves on to
``committed``. The consumer never marks a job failed: a record it cannot write goes to raw_events_rejected (and
counts), a shard it has to stop is read again later. ``accepted`` (counted, not yet acknowledged) is a state of
the status API and moves on like ``published``, but this ingest never stores it.

To add a state: a member of `JobState` (the status API lists its values), the rule in `add_committed` if
committed counts move jobs out of it, and the code that writes it (`NewJob.state` in eventpipe_ingest).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from eventpipe_common.errors import EventpipeError


class JobState(enum.StrEnum):
    ACCEPTED = "accepted"
    PUBLISHED = "published"
    COMMITTED = "committed"
    FAILED = "failed"


class JobExistsError(EventpipeError):
    """A job was created twice with the same job id."""

    code = "job_exists"


metadata = sa.MetaData()

jobs_table = sa.Table(
    "ingest_jobs",
    metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("pipeline", sa.String(253), nullable=False, server_default=""),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("received", sa.BigInteger, nullable=False),
    sa.Column("accepted", sa.BigInteger, nullable=False),
    sa.Column("rejected", sa.BigInteger, nullable=False),
    sa.Column("duplicates", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("committed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# The consumer's commits whose counts were added (one row per Iceberg snapshot): `record_committed` with a
# snapshot key adds a commit's counts once, so they can be replayed from the table's snapshots after a crash
# between the Iceberg commit and the job update, or a commit whose success the client did not see.
applied_commits_table = sa.Table(
    "job_commit_snapshots",
    metadata,
    sa.Column("snapshot", sa.String(128), primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

# Counts for job ids that have no row (yet): a job whose row is written after its records were acknowledged,
# or whose row was lost. Creating the job, or reading it, folds them in.
unknown_commits_table = sa.Table(
    "unknown_job_commits",
    metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("committed", sa.BigInteger, nullable=False),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Job:
    job_id: str
    pipeline: str
    state: JobState
    received: int
    accepted: int
    rejected: int
    duplicates: int
    committed: int
    reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewJob:
    """A job row to create (``JobStore.create_jobs``, ``JobWriter``)."""

    job_id: str
    received: int
    accepted: int
    rejected: int
    duplicates: int = 0
    pipeline: str = ""
    state: JobState = JobState.ACCEPTED
    reason: str | None = None


JOB_COLUMNS = ("job_id", "pipeline", "state", "received", "accepted", "rejected", "duplicates", "committed",
               "reason", "created_at", "updated_at")


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every timestamp we write is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def job_row(job: NewJob, created: Any) -> dict[str, Any]:
    """A new job's row, with `created` (as the database takes it) as its creation and update time."""
    return {"job_id": job.job_id, "pipeline": job.pipeline, "state": job.state.value, "received": job.received,
            "accepted": job.accepted, "rejected": job.rejected, "duplicates": job.duplicates, "committed": 0,
            "reason": job.reason, "created_at": created, "updated_at": created}


def add_committed(n: int | sa.ColumnElement[Any]) -> dict[str, Any]:
    """SET clauses adding `n` committed events, moving accepted/published/failed jobs to committed when complete.

    In SQL every column on the right side of SET is the row's old value, so this is one atomic step.
    """
    new_committed = jobs_table.c.committed + n
    complete = sa.and_(new_committed >= jobs_table.c.accepted,
                       jobs_table.c.state.in_([JobState.ACCEPTED.value, JobState.PUBLISHED.value,
                                               JobState.FAILED.value]))
    return {"committed": new_committed,
            "state": sa.case((complete, JobState.COMMITTED.value), else_=jobs_table.c.state)}
