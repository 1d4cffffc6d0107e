"""The job store: one row per ingest request, written by ingest (accepted/published/failed) and the consumer
(committed counts).

Several processes write it at once (ingest replicas, consumers), so every change is a single atomic SQL
statement (``committed = committed + :n``, conditional state moves); nothing reads a row, changes it in Python
and writes it back. SQLite (WAL, busy timeout) by default, PostgreSQL through a SQLAlchemy DSN in production.

States::

    accepted --mark_published--> published --record_committed (committed >= accepted)--> committed
        \\--mark_failed--> failed --record_committed (committed >= accepted)--> committed

``failed`` means that some events cannot land (ingest could not publish them); it is final only then: a job
whose committed count still reaches its accepted count (a publish that timed out on the client's side but
landed) moves on to ``committed``. The consumer never marks a job failed: a record it cannot write goes to
raw_events_rejected (and counts), a shard it has to stop is read again later.

A job the consumer reaches before ``mark_published`` (the consumer can be faster than the ack round trip)
moves from accepted straight to committed; ``mark_published`` never moves a job backwards.
Counts for job ids the store does not know (another store, a job row lost, or a job whose row is written only
after its records were acknowledged) are kept in ``unknown_job_commits`` so they can be reconciled
(``create_job``, ``create_jobs``, ``get`` and ``reconcile`` fold them into the job once it exists).

The ingest service writes each job once, after Kinesis answered (``create_jobs`` with state published, or
failed with its reason), and the writes of concurrent requests share one transaction (``JobWriter``, group
commit). On PostgreSQL that row can be created while a consumer records counts for the same id, each
transaction blind to the other's uncommitted rows; a transaction-scoped advisory lock per job id, taken by
both sides, orders them so the counts are never left behind in ``unknown_job_commits``. (SQLite serializes
writers, BEGIN IMMEDIATE, so the race does not exist there.)

Synchronous API (SQLAlchemy Core); async callers use ``asyncio.to_thread`` or ``JobWriter``.
"""

from __future__ import annotations

import asyncio
import enum
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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

# The consumer's commits whose counts were added (one row per Iceberg snapshot): `record_committed` with a
# snapshot key adds a commit's counts once, so they can be replayed from the table's snapshots after a crash
# between the Iceberg commit and the job update, or a commit whose success the client did not see.
applied_commits_table = sa.Table(
    "job_commit_snapshots",
    metadata,
    sa.Column("snapshot", sa.String(128), primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
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


@dataclass(frozen=True)
class NewJob:
    """A job row to create (``create_jobs``, ``JobWriter``)."""

    job_id: str
    received: int
    accepted: int
    rejected: int
    duplicates: int = 0
    pipeline: str = ""
    state: JobState = JobState.ACCEPTED
    reason: str | None = None


# Built once: SQLAlchemy caches the compiled SQL of a statement object, not of each newly built one.
_INSERT_JOB = jobs_table.insert()
_DELETE_UNKNOWN = (sa.delete(unknown_commits_table)
                   .where(unknown_commits_table.c.job_id.in_(sa.bindparam("ids", expanding=True)))
                   .returning(unknown_commits_table.c.job_id, unknown_commits_table.c.committed))
# Advisory locks of a set of job ids (sorted by the caller, so every transaction locks in the same order).
_PG_LOCK_IDS = sa.text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(id, 0))) FROM unnest(:ids) AS t(id)"
).bindparams(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Text)))


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every timestamp we write is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


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


_JOB_COLUMNS = ("job_id", "pipeline", "state", "received", "accepted", "rejected", "duplicates", "committed",
                "reason", "created_at", "updated_at")


def _job_row(job: NewJob, now: Any) -> dict[str, Any]:
    """A new job's row, with `now` (as the database takes it) as its creation and update time."""
    return {"job_id": job.job_id, "pipeline": job.pipeline, "state": job.state.value, "received": job.received,
            "accepted": job.accepted, "rejected": job.rejected, "duplicates": job.duplicates, "committed": 0,
            "reason": job.reason, "created_at": now, "updated_at": now}


class _SqliteNowaitInsert:
    """The fast path of `JobStore.create_jobs_nowait` on a SQLite file: the standard library's sqlite3 on its own
    connection, busy timeout 0, running the INSERT that SQLAlchemy compiles for `jobs_table` (same SQL, same
    DateTime storage: the column type's own bind processor). SQLAlchemy's execution machinery costs several
    times SQLite's own work on a single-row write (docs/benchmarks.md). Anything out of the ordinary gives up and
    leaves the write to `create_jobs`: the lock is held elsewhere, a job id exists, the consumer counted a job
    before its row (the counts to fold in). A commit does not sync to disk (WAL, synchronous=NORMAL) except when
    it runs SQLite's automatic checkpoint, every ~1,000 pages of WAL (thousands of rows)."""

    def __init__(self, path: str, dialect: sa.Dialect) -> None:
        insert = jobs_table.insert().compile(dialect=dialect, column_keys=list(_JOB_COLUMNS))
        self._insert_sql = str(insert)
        self._order = list(insert.positiontup or ())
        if sorted(self._order) != sorted(_JOB_COLUMNS):
            raise RuntimeError(f"unexpected INSERT parameters: {self._order}")
        self._unknown_sql = f"SELECT 1 FROM {unknown_commits_table.name} WHERE job_id IN ({{}}) LIMIT 1"
        created_at = jobs_table.c.created_at.type.dialect_impl(dialect)
        to_db: Callable[[Any], Any] | None = created_at.bind_processor(dialect)
        if to_db is None:
            raise RuntimeError("SQLAlchemy's SQLite DateTime has no bind processor: cannot store its format")
        self._db_time = to_db
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        # Opened at first use, once the store has made the file (WAL mode is the file's, set by the engine);
        # used by one thread at a time (JobWriter: the event loop's), not necessarily the one that opened it.
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout=0")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # as the engine's connections
        return self._conn

    def insert(self, jobs: Sequence[NewJob]) -> bool:
        if not jobs:
            return True
        now = self._db_time(_now())
        rows = [tuple(_job_row(job, now)[name] for name in self._order) for job in jobs]
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")  # SQLITE_BUSY at once when another connection holds the lock
            conn.executemany(self._insert_sql, rows)
            counted = conn.execute(self._unknown_sql.format(",".join("?" * len(jobs))),
                                   [j.job_id for j in jobs]).fetchone()
            if counted is not None:
                conn.execute("ROLLBACK")
                return False
            conn.execute("COMMIT")
        except sqlite3.Error:
            # Busy, a known id, or anything else: create_jobs writes (or fails) the same jobs in full.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return False
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class _PgPipelinedInsert:
    """`create_jobs` on PostgreSQL in one round trip instead of four: psycopg's pipeline mode sends the advisory
    locks, the INSERT, the fold of the consumer's early counts and the COMMIT together, and the server runs them in
    that order, each statement with a fresh snapshot (READ COMMITTED), as when they went one by one. The fold is a
    single UPDATE ... FROM (DELETE ... RETURNING), so the client decides nothing mid-transaction; the SQL is what
    SQLAlchemy compiles for the tables. The round trips are most of a row's cost (client CPU, docs/benchmarks.md).
    Any error gives up (the connection is discarded) and leaves the jobs to the
    statement-by-statement path, which raises what it meets and refuses known ids one by one."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self._engine = engine
        self._lock = str(_PG_LOCK_IDS.compile(dialect=dialect))
        self._insert = str(jobs_table.insert().compile(dialect=dialect, column_keys=list(_JOB_COLUMNS)))
        ids = sa.bindparam("ids", value=[], type_=postgresql.ARRAY(sa.Text))
        early = (sa.delete(unknown_commits_table).where(unknown_commits_table.c.job_id == sa.func.any(ids))
                 .returning(unknown_commits_table.c.job_id, unknown_commits_table.c.committed).cte("early"))
        now = sa.bindparam("now", value=_now(), type_=sa.DateTime(timezone=True))
        fold = (jobs_table.update().where(jobs_table.c.job_id == early.c.job_id)
                .values(**_add_committed(early.c.committed), updated_at=now)
                .compile(dialect=dialect, compile_kwargs={"render_postcompile": True}))
        self._fold = str(fold)
        self._fold_params = dict(fold.params)
        self._conn: Any = None  # a psycopg connection taken out of the engine's pool
        self._busy = threading.Lock()
        # libpq's form of the engine's URL, for the event loop's own connection (insert_async).
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._aconn: Any = None
        self._aconn_loop: asyncio.AbstractEventLoop | None = None
        self._async_busy = False

    def _parameters(self, jobs: Sequence[NewJob]) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        """The parameters of the lock, the INSERT (one set per job) and the fold."""
        now = _now()
        ids = sorted(job.job_id for job in jobs)
        return {"ids": ids}, [_job_row(job, now) for job in jobs], {**self._fold_params, "ids": ids, "now": now}

    def insert(self, jobs: Sequence[NewJob]) -> bool:
        import psycopg  # the PostgreSQL driver; only stores on PostgreSQL get here

        # One connection of its own, taken out of the pool once: a pool checkout pings the server first (another
        # round trip). One caller at a time; a second one meanwhile takes the other path.
        if not self._busy.acquire(blocking=False):
            return False
        try:
            if self._conn is None:
                raw = self._engine.raw_connection()
                raw.detach()  # out of the pool for good, with the engine's connect arguments and events
                self._conn = raw.dbapi_connection
            conn = self._conn
            assert isinstance(conn, psycopg.Connection)
            lock, rows, fold = self._parameters(jobs)
            with conn.pipeline(), conn.cursor() as cur:
                cur.execute(self._lock, lock)
                cur.executemany(self._insert, rows)
                cur.execute(self._fold, fold)
                conn.commit()
        except psycopg.Error:
            self.close()  # mid-pipeline, or the server went away: a new connection next time
            return False
        finally:
            self._busy.release()
        return True

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    async def insert_async(self, jobs: Sequence[NewJob]) -> bool:
        """`insert` on the running event loop (psycopg's async connection): no thread hand-off. The connection
        belongs to the loop that opened it; on another loop a new one is opened."""
        import psycopg

        if self._async_busy:
            return False
        self._async_busy = True
        loop = asyncio.get_running_loop()
        try:
            if self._aconn is not None and self._aconn_loop is not loop:
                self._aconn.pgconn.finish()  # its loop is gone; close the socket without it
                self._aconn = None
            if self._aconn is None:
                self._aconn = await psycopg.AsyncConnection.connect(self._conninfo)
                self._aconn_loop = loop
            conn = self._aconn
            lock, rows, fold = self._parameters(jobs)
            async with conn.pipeline(), conn.cursor() as cur:
                await cur.execute(self._lock, lock)
                await cur.executemany(self._insert, rows)
                await cur.execute(self._fold, fold)
                await conn.commit()
        except psycopg.Error:
            await self.aclose()
            return False
        finally:
            self._async_busy = False
        return True

    async def aclose(self) -> None:
        if self._aconn is not None:
            conn, self._aconn = self._aconn, None
            await conn.close()


class JobStore:
    """Jobs of one or more pipelines in one SQL database (see the module docstring for the state machine)."""

    def __init__(self, engine: Engine, sqlite_file: str | None = None) -> None:
        self.engine = engine
        # SQLite files only: a connection that never waits for the write lock (create_jobs_nowait).
        self._nowait = _SqliteNowaitInsert(sqlite_file, engine.dialect) if sqlite_file else None
        self._postgresql = engine.dialect.name == "postgresql"
        self._pipelined = _PgPipelinedInsert(engine) if self._postgresql else None
        self._insert = postgresql.insert if self._postgresql else sqlite.insert

    @classmethod
    def from_dsn(cls, dsn: str, *, create: bool = True) -> JobStore:
        """Open the store at a SQLAlchemy URL (sqlite:///path or postgresql+psycopg://...), creating tables."""
        store = cls(_engine_for(dsn), _sqlite_file(dsn))
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
        if self._nowait is not None:
            self._nowait.close()
        if self._pipelined is not None:
            self._pipelined.close()
        self.engine.dispose()

    @property
    def writes_async(self) -> bool:
        """True when `create_jobs_async` can write (PostgreSQL): see JobWriter."""
        return self._pipelined is not None

    async def create_jobs_async(self, jobs: Sequence[NewJob]) -> bool:
        """Create fresh jobs on the running event loop, in one round trip (PostgreSQL); False, and nothing
        written, when that cannot be done so (a job id is known, an error, not PostgreSQL): `create_jobs` then
        does it in full."""
        return self._pipelined is not None and bool(jobs) and await self._pipelined.insert_async(jobs)

    async def aclose(self) -> None:
        """Close what `create_jobs_async` opened on this event loop."""
        if self._pipelined is not None:
            await self._pipelined.aclose()

    @property
    def writes_nowait(self) -> bool:
        """True when `create_jobs_nowait` can write (a SQLite file): see JobWriter."""
        return self._nowait is not None

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

    def create_jobs(self, jobs: Sequence[NewJob]) -> set[str]:
        """Record several new jobs in one transaction; returns the ids of those that already existed (left
        unchanged). Counts the consumer recorded for these ids before their rows existed are folded in."""
        if not jobs:
            return set()
        if self._pipelined is not None and self._pipelined.insert(jobs):
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
        now = _now()
        ids = sorted(job.job_id for job in jobs)
        rows = [_job_row(job, now) for job in jobs]
        with self.engine.begin() as conn:
            if self._postgresql:
                conn.execute(_PG_LOCK_IDS, {"ids": ids})
            # A plain INSERT (ON CONFLICT DO NOTHING would be compiled anew on every call).
            conn.execute(_INSERT_JOB, rows)
            for job_id, count in sorted(conn.execute(_DELETE_UNKNOWN, {"ids": ids}).all()):
                conn.execute(jobs_table.update().where(jobs_table.c.job_id == job_id)
                             .values(**_add_committed(int(count)), updated_at=now))

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
        or failed). Unknown job ids never raise: their counts go to `unknown_job_commits` for reconciliation.
        With `snapshot` (a key of the Iceberg commit the counts come from) the counts are added at most once.
        Job ids are processed in sorted order so that concurrent consumers lock rows in the same order (no
        deadlocks on PostgreSQL).
        """
        items = sorted((job_id, int(n)) for job_id, n in counts.items() if job_id and int(n) > 0)
        if not items and snapshot is None:
            return True
        now = _now()
        with self._tx() as conn:
            if snapshot is not None:
                marked = conn.execute(self._insert(applied_commits_table).values(snapshot=snapshot, applied_at=now)
                                      .on_conflict_do_nothing(index_elements=[applied_commits_table.c.snapshot])
                                      .returning(applied_commits_table.c.snapshot)).first()
                if marked is None:
                    return False
            for job_id, n in items:
                result = conn.execute(jobs_table.update().where(jobs_table.c.job_id == job_id)
                                      .values(**_add_committed(n), updated_at=now))
                if result.rowcount == 0 and self._postgresql:
                    # The job row may be in a transaction of `create_jobs` that is not committed yet: wait for it
                    # (same advisory lock), then look again; sorted ids keep the lock order of create_jobs.
                    conn.execute(_PG_LOCK_IDS, {"ids": [job_id]})
                    result = conn.execute(jobs_table.update().where(jobs_table.c.job_id == job_id)
                                          .values(**_add_committed(n), updated_at=now))
                if result.rowcount == 0:
                    stmt = self._insert(unknown_commits_table).values(
                        job_id=job_id, committed=n, first_seen=now, last_seen=now)
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


class JobWriter:
    """Creates jobs for concurrent async callers, grouping the rows that arrive while a transaction runs into
    the next one (group commit): one transaction per group instead of per request.

    The hand-off of a group to a thread and back costs CPU on every request (docs/benchmarks.md), so the writes
    stay on the event loop where they can (`inline`, the default): on a SQLite file a fresh row is written at
    once when nothing is queued and no other connection holds the write lock (`JobStore.create_jobs_nowait`);
    on PostgreSQL each group is one pipelined round trip awaited on the loop (`JobStore.create_jobs_async`).
    Anything else (the SQLite lock held elsewhere, a known id, an error) goes to the one writer thread
    (`JobStore.create_jobs`), so the process never contends with itself for the write lock and the loop never
    waits for one.
    """

    def __init__(self, store: JobStore, max_group: int = 256, *, inline: bool | None = None) -> None:
        self._store = store
        self._inline = store.writes_nowait if inline is None else inline and store.writes_nowait
        self._async = store.writes_async if inline is None else inline and store.writes_async
        self._max_group = max_group
        self._pending: list[tuple[NewJob, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobwriter")

    async def create(self, job: NewJob) -> None:
        """Return once the job row is committed; raise JobExistsError for a known id, or the database's error."""
        if self._inline and not self._pending and self._store.create_jobs_nowait([job]):
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((job, done))
        if self._task is None:
            self._task = loop.create_task(self._write_groups())
        await done

    async def _write_groups(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                group, self._pending = self._pending[:self._max_group], self._pending[self._max_group:]
                jobs = [job for job, _ in group]
                try:
                    if self._async and await self._store.create_jobs_async(jobs):
                        existing: set[str] = set()
                    else:
                        existing = await loop.run_in_executor(self._thread, self._store.create_jobs, jobs)
                except Exception as exc:  # noqa: BLE001 - handed to every caller of the group, who decides
                    for _, done in group:
                        if not done.done():  # a caller cancelled meanwhile has nobody to tell
                            done.set_exception(exc)
                    continue
                for job, done in group:
                    if done.done():
                        continue
                    if job.job_id in existing:
                        done.set_exception(JobExistsError(f"job {job.job_id} already exists", job_id=job.job_id))
                    else:
                        done.set_result(None)
        finally:
            self._task = None

    async def close(self) -> None:
        """Wait for the writes under way, then stop the writer thread."""
        if self._task is not None:
            await asyncio.shield(self._task)
        await self._store.aclose()
        self._thread.shutdown(wait=True)


def _add_committed(n: int | sa.ColumnElement[Any]) -> dict[str, Any]:
    """SET clauses adding `n` committed events, moving accepted/published jobs to committed when complete.

    In SQL every column on the right side of SET is the row's old value, so this is one atomic step.
    """
    new_committed = jobs_table.c.committed + n
    complete = sa.and_(new_committed >= jobs_table.c.accepted,
                       jobs_table.c.state.in_([JobState.ACCEPTED.value, JobState.PUBLISHED.value,
                                               JobState.FAILED.value]))
    return {"committed": new_committed,
            "state": sa.case((complete, JobState.COMMITTED.value), else_=jobs_table.c.state)}
