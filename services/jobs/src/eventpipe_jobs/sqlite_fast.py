"""The fast write of a fresh job on a SQLite file: the standard library's sqlite3, never waiting for the lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from eventpipe_jobs.schema import JOB_COLUMNS, NewJob, job_row, jobs_table, now, unknown_commits_table


class SqliteNowaitInsert:
    """The fast path of `JobStore.create_jobs_nowait` on a SQLite file: the standard library's sqlite3 on its own
    connection, busy timeout 0, running the INSERT that SQLAlchemy compiles for `jobs_table` (same SQL, same
    DateTime storage: the column type's own bind processor). SQLAlchemy's execution machinery costs several
    times SQLite's own work on a single-row write (docs/benchmarks.md). Anything out of the ordinary gives up and
    leaves the write to `create_jobs`: the lock is held elsewhere, a job id exists, the consumer counted a job
    before its row (the counts to fold in). A commit does not sync to disk (WAL, synchronous=NORMAL) except when
    it runs SQLite's automatic checkpoint, every ~1,000 pages of WAL (thousands of rows)."""

    def __init__(self, path: str, dialect: sa.Dialect) -> None:
        insert = jobs_table.insert().compile(dialect=dialect, column_keys=list(JOB_COLUMNS))
        self._insert_sql = str(insert)
        self._order = list(insert.positiontup or ())
        if sorted(self._order) != sorted(JOB_COLUMNS):
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
        created = self._db_time(now())
        rows = [tuple(job_row(job, created)[name] for name in self._order) for job in jobs]
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
