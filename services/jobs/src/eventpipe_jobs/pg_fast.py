"""The fast write of fresh jobs on PostgreSQL: the whole transaction is one call of a server-side function, one
statement in one round trip (asyncpg on the event loop, psycopg in the writer thread)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from eventpipe_jobs.schema import JOB_COLUMNS, NewJob, add_committed, jobs_table, now, unknown_commits_table

# Advisory locks of a set of job ids (sorted by the caller, so every transaction locks in the same order).
PG_LOCK_IDS = sa.text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(id, 0))) FROM unnest(:ids) AS t(id)"
).bindparams(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Text)))

# Versioned: a replica of another version may run beside this one during a rollout, each calling its own body.
CREATE_JOBS_FUNCTION = "eventpipe_create_jobs_v1"
_ARGUMENTS = ("p_ids text[], p_pipelines text[], p_states text[], p_received bigint[], p_accepted bigint[], "
              "p_rejected bigint[], p_duplicates bigint[], p_reasons text[], p_at timestamptz")


def _fold_sql(dialect: sa.Dialect) -> str:
    """The fold of the consumer's early counts into the new rows, as SQLAlchemy compiles it from the one state
    rule (`add_committed`), over the function's arguments."""
    early = (sa.delete(unknown_commits_table)
             .where(unknown_commits_table.c.job_id == sa.func.any(sa.literal_column("p_ids")))
             .returning(unknown_commits_table.c.job_id, unknown_commits_table.c.committed).cte("early"))
    fold = (jobs_table.update().where(jobs_table.c.job_id == early.c.job_id)
            .values(**add_committed(early.c.committed), updated_at=sa.literal_column("p_at")))
    return str(fold.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def create_function_ddl(dialect: sa.Dialect) -> str:
    """`CREATE OR REPLACE FUNCTION` of the write: lock the ids, insert the rows, fold early counts. A VOLATILE
    PL/pgSQL function runs each statement with a fresh snapshot (READ COMMITTED), so after the advisory locks it
    sees what a consumer holding them committed, as the same statements sent one by one did."""
    columns = ", ".join(JOB_COLUMNS)
    return f"""
CREATE OR REPLACE FUNCTION {CREATE_JOBS_FUNCTION}({_ARGUMENTS}) RETURNS void LANGUAGE plpgsql VOLATILE AS $body$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(id, 0)) FROM unnest(p_ids) AS t(id);
  INSERT INTO {jobs_table.name} ({columns})
    SELECT i, p, s, r, a, rj, d, 0, rs, p_at, p_at
    FROM unnest(p_ids, p_pipelines, p_states, p_received, p_accepted, p_rejected, p_duplicates, p_reasons)
      AS t(i, p, s, r, a, rj, d, rs);
  {_fold_sql(dialect)};
END
$body$"""


def call_arguments(jobs: Sequence[NewJob], at: datetime) -> tuple[Any, ...]:
    """The function's arguments: one array per column, the jobs sorted by id (the lock order)."""
    ordered = sorted(jobs, key=lambda job: job.job_id)
    return ([j.job_id for j in ordered], [j.pipeline for j in ordered], [j.state.value for j in ordered],
            [j.received for j in ordered], [j.accepted for j in ordered], [j.rejected for j in ordered],
            [j.duplicates for j in ordered], [j.reason for j in ordered], at)


CONNECT_RETRY_SECONDS = 1.0
_CALL_PSYCOPG = f"SELECT {CREATE_JOBS_FUNCTION}({', '.join(['%s'] * 9)})"
_CALL_ASYNCPG = f"SELECT {CREATE_JOBS_FUNCTION}({', '.join(f'${n}' for n in range(1, 10))})"


class PgFastInsert:
    """`create_jobs` on PostgreSQL as one statement (the function above, made by `JobStore.create_tables`) in
    autocommit: one round trip and nothing for the client to compile or decide. On the event loop it goes through
    asyncpg, whose protocol runs on the loop's transport with a prepared statement (about half of psycopg's client
    CPU per call, and a third of the four pipelined statements this replaced; docs/benchmarks.md). Any error (a
    known id, the function missing, the server gone) gives up and leaves the jobs to the statement-by-statement
    path (`JobStore.create_jobs`), which raises what it meets and refuses known ids one by one; nothing is written
    by a call that fails, since the statement is its own transaction. A call the server refused keeps its
    connection; any other failure drops it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Any = None  # a psycopg connection taken out of the engine's pool
        self._busy = threading.Lock()
        # libpq's form of the engine's URL, for the event loop's own connection (insert_async).
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._aconn: Any = None
        self._aconn_loop: asyncio.AbstractEventLoop | None = None
        self._async_busy = False
        self._connect_after = 0.0  # time.monotonic() before which no new connection is tried (_connect)

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
                self._conn.autocommit = True
            conn = self._conn
            assert isinstance(conn, psycopg.Connection)
            conn.execute(_CALL_PSYCOPG, call_arguments(jobs, now()))
        except psycopg.Error:
            self.close()  # the server went away, or refused the call: a new connection next time
            return False
        finally:
            self._busy.release()
        return True

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    async def insert_async(self, jobs: Sequence[NewJob]) -> bool:
        """`insert` on the running event loop (asyncpg): no thread hand-off. The connection belongs to the loop
        that opened it; on another loop a new one is opened."""
        import asyncpg

        loop = asyncio.get_running_loop()
        if self._async_busy or (self._aconn is None and time.monotonic() < self._connect_after):
            return False
        self._async_busy = True
        try:
            if self._aconn is not None and self._aconn_loop is not loop:
                self._drop()  # its loop is gone; close the socket without it
            if self._aconn is None:
                self._aconn = await self._connect(loop)
            await self._aconn.execute(_CALL_ASYNCPG, *call_arguments(jobs, now()))
        except asyncpg.PostgresError:
            return False  # the server refused the call (a known id, no function yet); the connection goes on
        except Exception:  # noqa: BLE001 - the statement-by-statement path runs next and raises what matters
            self._drop()
            return False
        finally:
            self._async_busy = False
        return True

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> Any:
        """The loop's connection; after a failure the next attempt waits CONNECT_RETRY_SECONDS, so a DSN asyncpg
        cannot use (a libpq-only parameter such as connect_timeout) costs no connection attempt per group."""
        import asyncpg

        try:
            conn = await asyncpg.connect(self._conninfo)
        except BaseException:
            self._connect_after = time.monotonic() + CONNECT_RETRY_SECONDS
            raise
        self._aconn_loop = loop
        return conn

    def _drop(self) -> None:
        """Close the loop's connection at once, whatever state a failed call left it in."""
        if self._aconn is not None:
            conn, self._aconn = self._aconn, None
            conn.terminate()

    async def aclose(self) -> None:
        if self._aconn is not None:
            conn, self._aconn = self._aconn, None
            await conn.close(timeout=5)
