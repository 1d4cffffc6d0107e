"""JobStore: every read and write of the job store (see eventpipe_jobs.schema for the states), on SQLite (WAL,
busy timeout) by default or PostgreSQL through a SQLAlchemy DSN in production.

Several processes write it at once (ingest replicas, consumers), so every change is a single atomic SQL
statement (``committed = committed + :n``, conditional state moves); nothing reads a row, changes it in Python
and writes it back. Counts for job ids the store does not know (yet) are kept in ``unknown_job_commits``;
``create_jobs`` and ``get`` fold them into the job once it exists.

The ingest service writes each job once, after Kinesis answered, and the writes of concurrent requests share one
transaction (``JobWriter``, group commit). On PostgreSQL that row can be created while a consumer records counts
for the same id, each transaction blind to the other's uncommitted rows; a transaction-scoped advisory lock per
job id, taken by both sides, orders them so the counts are never left behind in ``unknown_job_commits``. (SQLite
serializes writers, BEGIN IMMEDIATE, so the race does not exist there.)

Synchronous API (SQLAlchemy Core); async callers use ``asyncio.to_thread`` or ``JobWriter``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from eventpipe_jobs.pg_fast import PG_LOCK_IDS, PgFastInsert, create_function_ddl
from eventpipe_jobs.schema import (
    Job,
    JobState,
    NewJob,
    add_committed,
    applied_commits_table,
    aware,
    job_row,
    jobs_table,
    metadata,
    now,
    unknown_commits_table,
)
from eventpipe_jobs.sqlite_fast import SqliteNowaitInsert

# Built once: SQLAlchemy caches the compiled SQL of a statement object, not of each newly built one.
_INSERT_JOB = jobs_table.insert()
_DELETE_UNKNOWN = (sa.delete(unknown_commits_table)
                   .where(unknown_commits_table.c.job_id.in_(sa.bindparam("ids", expanding=True)))
                   .returning(unknown_commits_table.c.job_id, unknown_commits_table.c.committed))


def _sqlite_file(dsn: str) -> str | None:
    """The database file of a SQLite DSN; None for other databases and in-memory SQLite."""
    url = sa.make_url(dsn)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return url.database


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
    """Jobs of one or more pipelines in one SQL database (eventpipe_jobs.schema has the state machine)."""

    def __init__(self, engine: Engine, sqlite_file: str | None = None) -> None:
        self.engine = engine
        # SQLite files only: a connection that never waits for the write lock (create_jobs_nowait).
        self._nowait = SqliteNowaitInsert(sqlite_file, engine.dialect) if sqlite_file else None
        self._postgresql = engine.dialect.name == "postgresql"
        self._fast_pg = PgFastInsert(engine) if self._postgresql else None
        self._insert = postgresql.insert if self._postgresql else sqlite.insert

    @classmethod
    def from_dsn(cls, dsn: str, *, create: bool = True) -> JobStore:
        """Open the store at a SQLAlchemy URL (sqlite:///path or postgresql+psycopg://...), creating tables."""
        store = cls(_engine_for(dsn), _sqlite_file(dsn))
        if create:
            store.create_tables()
        return store

    def create_tables(self) -> None:
        """Idempotent; several replicas starting at once may race on CREATE TABLE (or on replacing the
        PostgreSQL function of the fast write), so a loser retries once."""
        try:
            self._create_schema()
        except sa.exc.DBAPIError:
            self._create_schema()

    def _create_schema(self) -> None:
        metadata.create_all(self.engine, checkfirst=True)
        if self._postgresql:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(create_function_ddl(self.engine.dialect))

    def close(self) -> None:
        if self._nowait is not None:
            self._nowait.close()
        if self._fast_pg is not None:
            self._fast_pg.close()
        self.engine.dispose()

    @property
    def writes_async(self) -> bool:
        """True when `create_jobs_async` can write (PostgreSQL): see JobWriter."""
        return self._fast_pg is not None

    async def create_jobs_async(self, jobs: Sequence[NewJob]) -> bool:
        """Create fresh jobs on the running event loop, in one statement (PostgreSQL); False, and nothing
        written, when that cannot be done so (a job id is known, an error, not PostgreSQL): `create_jobs` then
        does it in full."""
        return self._fast_pg is not None and bool(jobs) and await self._fast_pg.insert_async(jobs)

    async def aclose(self) -> None:
        """Close what `create_jobs_async` opened on this event loop."""
        if self._fast_pg is not None:
            await self._fast_pg.aclose()

    @property
    def writes_nowait(self) -> bool:
        """True when `create_jobs_nowait` can write (a SQLite file): see JobWriter."""
        return self._nowait is not None

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # ------------------------------------------------------------------ ingest side
    def create_jobs(self, jobs: Sequence[NewJob]) -> set[str]:
        """Record several new jobs in one transaction; returns the ids of those that already existed (left
        unchanged). Counts the consumer recorded for these ids before their rows existed are folded in."""
        if not jobs:
            return set()
        if self._fast_pg is not None and self._fast_pg.insert(jobs):
            return set()
        try:
            self._insert_group(jobs)
        except sa.exc.IntegrityError:
            # A known id (never for fresh UUIDs, but possible): each job alone, so only that one is refused.
            if len(jobs) == 1:
                return {jobs[0].job_id}
            return set().union(*(self.create_jobs([job]) for job in jobs))
        return set()

    def create_jobs_nowait(self, jobs: Sequence[NewJob]) -> bool:
        """Create fresh jobs at once, without waiting for the database's write lock; False, and nothing written,
        when that cannot be done so (another connection holds the lock, a job id is known, the consumer already
        counted one of the jobs, or the store is not a SQLite file): `create_jobs` then does it in full. A
        SQLite insert costs less than a hand-off to a thread, so JobWriter makes it on the event loop."""
        return self._nowait is not None and self._nowait.insert(jobs)

    def _insert_group(self, jobs: Sequence[NewJob]) -> None:
        at = now()
        ids = sorted(job.job_id for job in jobs)
        rows = [job_row(job, at) for job in jobs]
        with self.engine.begin() as conn:
            if self._postgresql:
                conn.execute(PG_LOCK_IDS, {"ids": ids})
            # A plain INSERT (ON CONFLICT DO NOTHING would be compiled anew on every call).
            conn.execute(_INSERT_JOB, rows)
            for job_id, count in sorted(conn.execute(_DELETE_UNKNOWN, {"ids": ids}).all()):
                conn.execute(jobs_table.update().where(jobs_table.c.job_id == job_id)
                             .values(**add_committed(int(count)), updated_at=at))

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
                   created_at=aware(row["created_at"]), updated_at=aware(row["updated_at"]))

    def count_by_state(self) -> dict[str, int]:
        """How many jobs are in each state (every state present, 0 when none): one grouped count of the whole
        table, for the consumer's eventpipe_consumer_jobs gauge. No index on state (ingest writes a row per
        request and pays for every index), so it reads every row: callers cache it (metrics.JobStatesCollector)."""
        counts = {state.value: 0 for state in JobState}
        with self.engine.connect() as conn:
            for state, n in conn.execute(sa.select(jobs_table.c.state, sa.func.count())
                                         .group_by(jobs_table.c.state)):
                counts[JobState(state).value] = int(n)
        return counts

    def ping(self) -> None:
        """Raise when the database does not answer (readiness)."""
        with self.engine.connect() as conn:
            conn.execute(sa.select(sa.literal(1)))

    # ------------------------------------------------------------------ consumer side
    def record_committed(self, counts: Mapping[str, int], snapshot: str | None = None) -> bool:
        """Add committed event counts per job id, in one transaction; False when `snapshot` was applied already.

        A job whose committed count reaches its accepted count moves to `committed` (from accepted, published
        or failed). Unknown job ids never raise: their counts go to `unknown_job_commits`, folded
        into the job when it is created or read.
        With `snapshot` (a key of the Iceberg commit the counts come from) the counts are added at most once.
        Job ids are processed in sorted order so that concurrent consumers lock rows in the same order (no
        deadlocks on PostgreSQL).
        """
        items = sorted((job_id, int(n)) for job_id, n in counts.items() if job_id and int(n) > 0)
        if not items and snapshot is None:
            return True
        at = now()
        with self._tx() as conn:
            if snapshot is not None:
                marked = conn.execute(self._insert(applied_commits_table).values(snapshot=snapshot, applied_at=at)
                                      .on_conflict_do_nothing(index_elements=[applied_commits_table.c.snapshot])
                                      .returning(applied_commits_table.c.snapshot)).first()
                if marked is None:
                    return False
            for job_id, n in items:
                result = conn.execute(jobs_table.update().where(jobs_table.c.job_id == job_id)
                                      .values(**add_committed(n), updated_at=at))
                if result.rowcount == 0 and self._postgresql:
                    # The job row may be in a transaction of `create_jobs` that is not committed yet: wait for it
                    # (same advisory lock), then look again; sorted ids keep the lock order of create_jobs.
                    conn.execute(PG_LOCK_IDS, {"ids": [job_id]})
                    result = conn.execute(jobs_table.update().where(jobs_table.c.job_id == job_id)
                                          .values(**add_committed(n), updated_at=at))
                if result.rowcount == 0:
                    stmt = self._insert(unknown_commits_table).values(
                        job_id=job_id, committed=n, first_seen=at, last_seen=at)
                    conn.execute(stmt.on_conflict_do_update(
                        index_elements=[unknown_commits_table.c.job_id],
                        set_={"committed": unknown_commits_table.c.committed + stmt.excluded.committed,
                              "last_seen": stmt.excluded.last_seen}))
        return True

    def applied_snapshots(self, snapshots: Sequence[str]) -> set[str]:
        """Which of these commit keys `record_committed` has applied already."""
        if not snapshots:
            return set()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(applied_commits_table.c.snapshot)
                                .where(applied_commits_table.c.snapshot.in_(list(snapshots))))
            return {row[0] for row in rows}

    def unknown_commits(self) -> dict[str, int]:
        """Committed counts recorded for job ids that had no job row (yet)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(unknown_commits_table.c.job_id, unknown_commits_table.c.committed))
            return {job_id: int(n) for job_id, n in rows}

    @staticmethod
    def _fold_unknown(conn: Connection, job_id: str) -> None:
        """Move the unknown-job count of `job_id` (if any) into its existing job row, in `conn`'s transaction."""
        exists = conn.execute(sa.select(jobs_table.c.job_id).where(jobs_table.c.job_id == job_id)).first()
        if exists is None:
            return
        row = conn.execute(_DELETE_UNKNOWN, {"ids": [job_id]}).first()
        if row is None or not row.committed:
            return
        conn.execute(jobs_table.update().where(jobs_table.c.job_id == job_id)
                     .values(**add_committed(int(row.committed)), updated_at=now()))
