"""The job store: one row per ingest request, written by ingest (accepted/published/failed) and the consumer
(committed counts).

Several processes write it at once (ingest replicas, consumers), so every change is a single atomic SQL
statement (``committed = committed + :n``, conditional state moves); nothing reads a row, changes it in Python
and writes it back. SQLite (WAL, busy timeout) by default, PostgreSQL through a SQLAlchemy DSN in production.

States::

    accepted --mark_published--> published --record_committed (committed >= accepted)--> committed
        \\--mark_failed--> failed   (publishing did not finish; events that did reach the stream still count)

A job the consumer reaches before ``mark_published`` (the consumer can be faster than the ack round trip)
moves from accepted straight to committed; ``mark_published`` never moves a job backwards.
Counts for job ids the store does not know (another store, a job row lost) are kept in ``unknown_job_commits``
so they can be reconciled (``create_job``, ``get`` and ``reconcile`` fold them into the job once it exists).

Synchronous API (SQLAlchemy Core); async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from eventpipe_common.errors import EventpipeError


class JobState(enum.StrEnum):
    ACCEPTED = "accepted"
    PUBLISHED = "published"
    COMMITTED = "committed"
    FAILED = "failed"


class JobExistsError(EventpipeError):
    """`create_job` was called twice with the same job id."""

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


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every timestamp we write is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _engine_for(dsn: str) -> Engine:
    url = sa.make_url(dsn)
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, future=True)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, future=True)

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        # WAL lets readers run beside the one writer; the busy timeout makes writers queue instead of failing.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a power cut may lose the last commits
        # but never corrupts the file; the job store is bookkeeping, the events themselves are in the stream.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(conn: Connection) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes gets SQLITE_BUSY
        # without waiting when another process wrote in between (SQLAlchemy's documented pysqlite recipe).
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class JobStore:
    """Jobs of one or more pipelines in one SQL database (see the module docstring for the state machine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    @classmethod
    def from_dsn(cls, dsn: str, *, create: bool = True) -> JobStore:
        """Open the store at a SQLAlchemy URL (sqlite:///path or postgresql+psycopg://...), creating tables."""
        store = cls(_engine_for(dsn))
        if create:
            store.create_tables()
        return store

    def create_tables(self) -> None:
        """Idempotent; several replicas starting at once may race on CREATE TABLE, so a loser retries once."""
        try:
            metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:
            metadata.create_all(self.engine, checkfirst=True)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # ------------------------------------------------------------------ ingest side
    def create_job(self, job_id: str, received: int, accepted: int, rejected: int, *, duplicates: int = 0,
                   pipeline: str = "", state: JobState = JobState.ACCEPTED) -> Job:
        """Record a new job (before its events are published). Raises JobExistsError for a known id."""
        now = _now()
        with self._tx() as conn:
            try:
                conn.execute(jobs_table.insert().values(
                    job_id=job_id, pipeline=pipeline, state=state.value, received=received, accepted=accepted,
                    rejected=rejected, duplicates=duplicates, committed=0, reason=None, created_at=now,
                    updated_at=now))
            except sa.exc.IntegrityError as exc:
                raise JobExistsError(f"job {job_id} already exists", job_id=job_id) from exc
            folded = self._take_unknown(conn, job_id)
            if folded:
                conn.execute(jobs_table.update().where(jobs_table.c.job_id == job_id)
                             .values(**_add_committed(folded), updated_at=now))
        if folded:
            job = self.get(job_id)
            assert job is not None
            return job
        return Job(job_id=job_id, pipeline=pipeline, state=state, received=received, accepted=accepted,
                   rejected=rejected, duplicates=duplicates, committed=0, reason=None, created_at=now,
                   updated_at=now)

    def mark_published(self, job_id: str) -> bool:
        """Kinesis acknowledged every record: accepted -> published. False when the job was not `accepted`."""
        with self._tx() as conn:
            result = conn.execute(
                jobs_table.update()
                .where(jobs_table.c.job_id == job_id, jobs_table.c.state == JobState.ACCEPTED.value)
                .values(state=JobState.PUBLISHED.value, updated_at=_now()))
        return result.rowcount > 0

    def mark_failed(self, job_id: str, reason: str) -> bool:
        """Publishing did not finish: the job is failed with `reason` unless it was already committed."""
        with self._tx() as conn:
            result = conn.execute(
                jobs_table.update()
                .where(jobs_table.c.job_id == job_id, jobs_table.c.state != JobState.COMMITTED.value)
                .values(state=JobState.FAILED.value, reason=reason, updated_at=_now()))
        return result.rowcount > 0

    def get(self, job_id: str) -> Job | None:
        """The job, or None. Counts the consumer recorded before the job row existed are folded in first."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.job_id == job_id)).mappings().first()
            pending = row is not None and conn.execute(
                sa.select(unknown_commits_table.c.job_id).where(unknown_commits_table.c.job_id == job_id)).first()
        if pending:
            with self._tx() as conn:
                self._fold_unknown(conn, job_id)
            return self.get(job_id)
        if row is None:
            return None
        return Job(job_id=row["job_id"], pipeline=row["pipeline"], state=JobState(row["state"]),
                   received=row["received"], accepted=row["accepted"], rejected=row["rejected"],
                   duplicates=row["duplicates"], committed=row["committed"], reason=row["reason"],
                   created_at=_aware(row["created_at"]), updated_at=_aware(row["updated_at"]))

    def ping(self) -> None:
        """Raise when the database does not answer (readiness)."""
        with self.engine.connect() as conn:
            conn.execute(sa.select(sa.literal(1)))

    # ------------------------------------------------------------------ consumer side
    def record_committed(self, counts: Mapping[str, int]) -> None:
        """Add committed event counts per job id, in one transaction.

        A job whose committed count reaches its accepted count moves to `committed` (from accepted or
        published; a failed job keeps its state but its count grows). Unknown job ids never raise: their counts
        go to `unknown_job_commits` for reconciliation. Job ids are processed in sorted order so that
        concurrent consumers lock rows in the same order (no deadlocks on PostgreSQL).
        """
        items = sorted((job_id, int(n)) for job_id, n in counts.items() if job_id and int(n) > 0)
        if not items:
            return
        now = _now()
        with self._tx() as conn:
            for job_id, n in items:
                result = conn.execute(jobs_table.update().where(jobs_table.c.job_id == job_id)
                                      .values(**_add_committed(n), updated_at=now))
                if result.rowcount == 0:
                    stmt = self._insert(unknown_commits_table).values(
                        job_id=job_id, committed=n, first_seen=now, last_seen=now)
                    conn.execute(stmt.on_conflict_do_update(
                        index_elements=[unknown_commits_table.c.job_id],
                        set_={"committed": unknown_commits_table.c.committed + stmt.excluded.committed,
                              "last_seen": stmt.excluded.last_seen}))

    def unknown_commits(self) -> dict[str, int]:
        """Committed counts recorded for job ids that had no job row (yet)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(unknown_commits_table.c.job_id, unknown_commits_table.c.committed))
            return {job_id: int(n) for job_id, n in rows}

    def reconcile(self) -> int:
        """Fold unknown-job counts into jobs that exist now; returns how many job ids were folded."""
        folded = 0
        for job_id in sorted(self.unknown_commits()):
            with self._tx() as conn:
                folded += self._fold_unknown(conn, job_id)
        return folded

    def _fold_unknown(self, conn: Connection, job_id: str) -> int:
        """Move the unknown-job count of `job_id` (if any) into its existing job row, in `conn`'s transaction."""
        exists = conn.execute(sa.select(jobs_table.c.job_id).where(jobs_table.c.job_id == job_id)).first()
        if exists is None:
            return 0
        count = self._take_unknown(conn, job_id)
        if not count:
            return 0
        conn.execute(jobs_table.update().where(jobs_table.c.job_id == job_id)
                     .values(**_add_committed(count), updated_at=_now()))
        return 1

    @staticmethod
    def _take_unknown(conn: Connection, job_id: str) -> int:
        """Delete and return the unknown-job count of `job_id` (0 when none): one statement."""
        row = conn.execute(
            sa.delete(unknown_commits_table)
            .where(unknown_commits_table.c.job_id == job_id)
            .returning(unknown_commits_table.c.committed)).first()
        return int(row[0]) if row is not None else 0


def _add_committed(n: int) -> dict[str, Any]:
    """SET clauses adding `n` committed events, moving accepted/published jobs to committed when complete.

    In SQL every column on the right side of SET is the row's old value, so this is one atomic step.
    """
    new_committed = jobs_table.c.committed + n
    complete = sa.and_(new_committed >= jobs_table.c.accepted,
                       jobs_table.c.state.in_([JobState.ACCEPTED.value, JobState.PUBLISHED.value]))
    return {"committed": new_committed,
            "state": sa.case((complete, JobState.COMMITTED.value), else_=jobs_table.c.state)}
