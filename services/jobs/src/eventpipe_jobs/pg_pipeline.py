"""The fast write of fresh jobs on PostgreSQL: the whole transaction in one pipelined round trip (psycopg)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from eventpipe_jobs.schema import JOB_COLUMNS, NewJob, add_committed, job_row, jobs_table, now, unknown_commits_table

# Advisory locks of a set of job ids (sorted by the caller, so every transaction locks in the same order).
PG_LOCK_IDS = sa.text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(id, 0))) FROM unnest(:ids) AS t(id)"
).bindparams(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Text)))


class PgPipelinedInsert:
    """`create_jobs` on PostgreSQL in one round trip instead of four: psycopg's pipeline mode sends the advisory
    locks, the INSERT, the fold of the consumer's early counts and the COMMIT together, and the server runs them in
    that order, each statement with a fresh snapshot (READ COMMITTED), as when they went one by one. The fold is a
    single UPDATE ... FROM (DELETE ... RETURNING), so the client decides nothing mid-transaction; the SQL is what
    SQLAlchemy compiles for the tables. The round trips are most of a row's cost (client CPU, docs/benchmarks.md).
    Any error gives up (the connection is discarded) and leaves the jobs to the statement-by-statement path
    (`JobStore.create_jobs`), which raises what it meets and refuses known ids one by one."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self._engine = engine
        self._lock = str(PG_LOCK_IDS.compile(dialect=dialect))
        self._insert = str(jobs_table.insert().compile(dialect=dialect, column_keys=list(JOB_COLUMNS)))
        ids = sa.bindparam("ids", value=[], type_=postgresql.ARRAY(sa.Text))
        early = (sa.delete(unknown_commits_table).where(unknown_commits_table.c.job_id == sa.func.any(ids))
                 .returning(unknown_commits_table.c.job_id, unknown_commits_table.c.committed).cte("early"))
        at = sa.bindparam("now", value=now(), type_=sa.DateTime(timezone=True))
        fold = (jobs_table.update().where(jobs_table.c.job_id == early.c.job_id)
                .values(**add_committed(early.c.committed), updated_at=at)
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
        created = now()
        ids = sorted(job.job_id for job in jobs)
        return {"ids": ids}, [job_row(job, created) for job in jobs], {**self._fold_params, "ids": ids, "now": created}

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
