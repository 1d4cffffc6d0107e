"""The job store on SQLite and on a real PostgreSQL server: state machine, atomic counts, several writers."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from eventpipe_jobs.pg_fast import CREATE_JOBS_FUNCTION
from eventpipe_jobs.schema import JobExistsError, JobState, NewJob, jobs_table, unknown_commits_table
from eventpipe_jobs.store import JobStore
from eventpipe_jobs.writer import JobWriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobStore]:
    if request.param == "sqlite":
        dsn = f"sqlite:///{tmp_path_factory.mktemp('jobs') / 'jobs.db'}"
    else:
        dsn = request.getfixturevalue("postgres_dsn")
    job_store = JobStore.from_dsn(dsn)
    yield job_store
    job_store.close()


def new_id() -> str:
    return str(uuid.uuid4())


def test_lifecycle_published_committed(store: JobStore) -> None:
    job_id = new_id()
    assert store.create_jobs([NewJob(job_id, 10, 8, 2, pipeline="shop", state=JobState.PUBLISHED)]) == set()
    job = store.get(job_id)
    assert job is not None
    assert (job.state, job.received, job.accepted, job.rejected, job.committed) == (JobState.PUBLISHED, 10, 8, 2, 0)
    store.record_committed({job_id: 5})
    job = store.get(job_id)
    assert job is not None and (job.state, job.committed) == (JobState.PUBLISHED, 5)
    store.record_committed({job_id: 3})
    job = store.get(job_id)
    assert job is not None and (job.state, job.committed) == (JobState.COMMITTED, 8)
    assert job.created_at.tzinfo is not None


def test_unknown_job_is_none(store: JobStore) -> None:
    assert store.get(new_id()) is None


def test_failed_keeps_reason_and_counts_later_commits(store: JobStore) -> None:
    """`failed` stays while some events are missing; once every accepted event is committed (the publish timed
    out on the client's side but landed) the job is committed, keeping the reason of the failure it overcame."""
    job_id = new_id()
    store.create_jobs([NewJob(job_id, 4, 4, 0, state=JobState.FAILED, reason="publish deadline of 5.0s exceeded")])
    store.record_committed({job_id: 3})
    job = store.get(job_id)
    assert job is not None
    assert (job.state, job.reason, job.committed) == (JobState.FAILED, "publish deadline of 5.0s exceeded", 3)
    store.record_committed({job_id: 1})
    job = store.get(job_id)
    assert job is not None
    assert (job.state, job.reason, job.committed) == (JobState.COMMITTED, "publish deadline of 5.0s exceeded", 4)


def test_unknown_job_ids_are_recorded_and_folded_in(store: JobStore) -> None:
    known, unknown = new_id(), new_id()
    store.create_jobs([NewJob(known, 2, 2, 0)])
    store.record_committed({known: 1, unknown: 7})
    store.record_committed({unknown: 3, "": 5})
    assert store.unknown_commits()[unknown] == 10
    assert "" not in store.unknown_commits()
    assert store.get(known).committed == 1  # type: ignore[union-attr]
    # The job row appears later (e.g. restored from another store): create_jobs folds the count in.
    assert store.create_jobs([NewJob(unknown, 10, 10, 0)]) == set()
    job = store.get(unknown)
    assert job is not None and (job.committed, job.state) == (10, JobState.COMMITTED)
    assert unknown not in store.unknown_commits()


def test_get_folds_counts_recorded_before_the_job_row(store: JobStore) -> None:
    """The create/record race on PostgreSQL can leave a count among the unknowns; a status read repairs it."""
    job_id = new_id()
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(jobs_table.insert().values(job_id=job_id, pipeline="", state="published", received=3,
                                                accepted=3, rejected=0, duplicates=0, committed=1,
                                                created_at=now, updated_at=now))
        conn.execute(unknown_commits_table.insert().values(job_id=job_id, committed=2, first_seen=now,
                                                           last_seen=now))
    job = store.get(job_id)
    assert job is not None and (job.committed, job.state) == (3, JobState.COMMITTED)
    assert job_id not in store.unknown_commits()


def test_concurrent_writers_lose_no_increment(store: JobStore) -> None:
    """Several threads (each its own connection) add to the same jobs at once: every increment counts."""
    jobs = [new_id() for _ in range(3)]
    store.create_jobs([NewJob(job_id, 10_000, 10_000, 0, state=JobState.PUBLISHED) for job_id in jobs])
    other = JobStore.from_dsn(str(store.engine.url.render_as_string(hide_password=False)))
    errors: list[BaseException] = []

    def worker(s: JobStore) -> None:
        try:
            for i in range(25):
                s.record_committed({jobs[i % 3]: 1, jobs[(i + 1) % 3]: 2})
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(store if i % 2 else other,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert not errors, errors
    total = sum(store.get(j).committed for j in jobs)  # type: ignore[union-attr]
    assert total == 6 * 25 * 3


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(accepted=st.integers(0, 50), increments=st.lists(st.integers(-2, 20), max_size=8))
def test_committed_is_the_sum_and_state_follows(store: JobStore, accepted: int, increments: list[int]) -> None:
    """The committed count is the sum of the positive increments; the state is committed iff it reaches accepted."""
    job_id = new_id()
    store.create_jobs([NewJob(job_id, accepted, accepted, 0, state=JobState.PUBLISHED)])
    for n in increments:
        store.record_committed({job_id: n})
    job = store.get(job_id)
    assert job is not None
    expected = sum(n for n in increments if n > 0)
    assert job.committed == expected
    assert job.state == (JobState.COMMITTED if expected >= accepted and expected > 0 else JobState.PUBLISHED)


def test_sqlite_default_path_is_created(tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'jobs.db'}"
    s = JobStore.from_dsn(dsn)
    s.ping()
    s.close()
    assert (tmp_path / "nested" / "dir" / "jobs.db").exists()


# ---------------------------------------------------------------- create_jobs and JobWriter (ingest's one write)
def stored_row(store: JobStore, job_id: str) -> dict[str, object] | None:
    """The job's row as stored, without the fold that `get` does on the way."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(jobs_table).where(jobs_table.c.job_id == job_id)).mappings().first()
    return dict(row) if row is not None else None


def test_create_jobs_writes_every_state_in_one_call(store: JobStore) -> None:
    jobs = [NewJob(new_id(), 10, 8, 2, duplicates=1, pipeline="shop", state=JobState.PUBLISHED),
            NewJob(new_id(), 3, 0, 3, state=JobState.COMMITTED),
            NewJob(new_id(), 5, 5, 0, state=JobState.FAILED, reason="Kinesis did not acknowledge")]
    assert store.create_jobs(jobs) == set()
    for new in jobs:
        job = store.get(new.job_id)
        assert job is not None
        assert (job.state, job.received, job.accepted, job.rejected, job.duplicates, job.pipeline, job.reason) == (
            new.state, new.received, new.accepted, new.rejected, new.duplicates, new.pipeline, new.reason)
        assert job.committed == 0 and job.created_at.tzinfo is not None


def test_create_jobs_names_known_ids_and_creates_the_others(store: JobStore) -> None:
    known = new_id()
    store.create_jobs([NewJob(known, 1, 1, 0, state=JobState.PUBLISHED)])
    fresh = [new_id(), new_id()]
    existing = store.create_jobs([NewJob(fresh[0], 2, 2, 0), NewJob(known, 9, 9, 0, state=JobState.FAILED),
                                  NewJob(fresh[1], 3, 3, 0)])
    assert existing == {known}
    assert [store.get(j).accepted for j in fresh] == [2, 3]  # type: ignore[union-attr]
    job = store.get(known)
    assert job is not None and (job.state, job.accepted) == (JobState.PUBLISHED, 1)  # left unchanged
    assert store.create_jobs([NewJob(fresh[0], 1, 1, 0)]) == {fresh[0]}


def test_create_jobs_folds_counts_the_consumer_recorded_first(store: JobStore) -> None:
    """The row is written after Kinesis answered; a consumer faster than that recorded counts for an unknown id,
    and creating the row folds them in (the state follows), in the row itself, not only on the way out of get."""
    complete, partial = new_id(), new_id()
    store.record_committed({complete: 4, partial: 1})
    assert store.unknown_commits() == {complete: 4, partial: 1}
    store.create_jobs([NewJob(complete, 5, 4, 1, state=JobState.PUBLISHED),
                       NewJob(partial, 3, 3, 0, state=JobState.PUBLISHED)])
    assert store.unknown_commits() == {}
    done, half = stored_row(store, complete), stored_row(store, partial)
    assert done is not None and (done["state"], done["committed"]) == ("committed", 4)
    assert half is not None and (half["state"], half["committed"]) == ("published", 1)


def test_create_jobs_on_postgresql_is_one_call_of_the_function(postgres_dsn: str) -> None:
    """On PostgreSQL create_jobs (the fold of early counts included) is one call of the server-side function,
    not SQLAlchemy's statement-by-statement path; a known id still makes it fall back and refuse that id alone."""
    store = JobStore.from_dsn(postgres_dsn)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    counted, fresh, known = new_id(), new_id(), new_id()
    store.create_jobs([NewJob(known, 1, 1, 0)])
    store.record_committed({counted: 2})
    sa.event.listen(store.engine, "before_cursor_execute", seen)
    try:
        assert store.create_jobs([NewJob(counted, 2, 2, 0, state=JobState.PUBLISHED), NewJob(fresh, 1, 1, 0)]) == set()
        assert statements == []
        assert store.create_jobs([NewJob(known, 1, 1, 0), NewJob(new_id(), 1, 1, 0)]) == {known}
        assert statements != [], "the known id went the statement-by-statement path"
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", seen)
    row = stored_row(store, counted)
    assert row is not None and (row["state"], row["committed"]) == ("committed", 2)
    assert store.unknown_commits() == {}
    store.close()


def at_once(*steps: Callable[[], object]) -> None:
    """Run the steps in threads released at the same instant; re-raise the first error."""
    barrier = threading.Barrier(len(steps))
    errors: list[BaseException] = []

    def run(step: Callable[[], object]) -> None:
        try:
            barrier.wait()
            step()
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_row_creation_racing_the_consumer_loses_no_count(store: JobStore) -> None:
    """Ingest creates the row while a consumer (another connection) records the job's counts, started at the
    same instant, many times: every count ends in the job row (on PostgreSQL, the two transactions cannot see
    each other's uncommitted rows; the advisory lock orders them)."""
    other = JobStore.from_dsn(str(store.engine.url.render_as_string(hide_password=False)))
    try:
        for _ in range(60):
            job = NewJob(new_id(), 7, 7, 0, state=JobState.PUBLISHED)
            at_once(functools.partial(store.create_jobs, [job]),
                    functools.partial(other.record_committed, {job.job_id: 7}))
            row = stored_row(store, job.job_id)
            assert row is not None and (row["committed"], row["state"]) == (7, "committed"), row
            assert job.job_id not in store.unknown_commits()
    finally:
        other.close()


def test_job_writer_groups_concurrent_creates(store: JobStore) -> None:
    """Concurrent callers share transactions (fewer create_jobs calls, each one transaction, than jobs); each
    returns once its row is stored."""
    groups: list[int] = []
    create_jobs = store.create_jobs

    def observed(jobs: Sequence[NewJob]) -> set[str]:  # wraps the real call to see the groups, changes nothing
        groups.append(len(jobs))
        return create_jobs(jobs)

    ids = [new_id() for _ in range(40)]

    async def main() -> None:
        writer = JobWriter(store, inline=False)  # the thread's path on SQLite too (see the inline tests below)

        async def one(job_id: str) -> None:
            await writer.create(NewJob(job_id, 2, 2, 0, state=JobState.PUBLISHED))
            assert stored_row(store, job_id) is not None  # committed before create returned

        await asyncio.gather(*(one(j) for j in ids))
        await writer.close()

    store.create_jobs = observed  # type: ignore[method-assign]
    try:
        asyncio.run(main())
    finally:
        del store.create_jobs
    assert all(store.get(j) is not None for j in ids)
    assert 1 <= len(groups) < len(ids) and sum(groups) == len(ids)


def test_job_writer_refuses_only_the_known_id(store: JobStore) -> None:
    known, fresh = new_id(), new_id()
    store.create_jobs([NewJob(known, 1, 1, 0)])

    async def main() -> list[BaseException | None]:
        writer = JobWriter(store)
        results = await asyncio.gather(writer.create(NewJob(known, 1, 1, 0)), writer.create(NewJob(fresh, 1, 1, 0)),
                                       return_exceptions=True)
        await writer.close()
        return list(results)

    refused, created = asyncio.run(main())
    assert isinstance(refused, JobExistsError) and created is None
    assert store.get(fresh) is not None


def test_job_writer_hands_a_database_error_to_every_caller_and_recovers(store: JobStore) -> None:
    """A failed transaction fails each caller of its group (ingest then answers 503); the writer keeps going."""
    ids = [new_id() for _ in range(3)]
    jobs_table.drop(store.engine)

    async def fail_then_recover() -> list[BaseException | None]:
        writer = JobWriter(store)
        results = await asyncio.gather(*(writer.create(NewJob(j, 1, 1, 0)) for j in ids), return_exceptions=True)
        await asyncio.to_thread(store.create_tables)
        await writer.create(NewJob(ids[0], 1, 1, 0))
        await writer.close()
        return list(results)

    results = asyncio.run(fail_then_recover())
    assert all(isinstance(r, sa.exc.DBAPIError) for r in results), results
    assert store.get(ids[0]) is not None and store.get(ids[1]) is None


def test_job_writer_goes_on_when_a_caller_is_cancelled(store: JobStore) -> None:
    ids = [new_id() for _ in range(5)]

    async def main() -> None:
        writer = JobWriter(store, inline=False)
        tasks = [asyncio.create_task(writer.create(NewJob(j, 1, 1, 0))) for j in ids]
        await asyncio.sleep(0)
        tasks[2].cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(done[2], asyncio.CancelledError)
        assert [d for i, d in enumerate(done) if i != 2] == [None] * 4
        await writer.close()

    asyncio.run(main())
    assert all(store.get(j) is not None for i, j in enumerate(ids) if i != 2)


def writer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("jobwriter")]


def test_job_writer_writes_a_free_sqlite_file_on_the_event_loop(tmp_path: Path) -> None:
    """No thread hand-off when nothing holds the write lock; the rows read back as create_jobs' do."""
    store = JobStore.from_dsn(f"sqlite:///{tmp_path / 'jobs.db'}")
    fresh = [new_id() for _ in range(5)]
    reference = new_id()
    store.create_jobs([NewJob(reference, 3, 2, 1, duplicates=4, pipeline="shop", state=JobState.FAILED,
                              reason="why")])

    async def main() -> None:
        writer = JobWriter(store)
        for job_id in fresh:
            await writer.create(NewJob(job_id, 3, 2, 1, duplicates=4, pipeline="shop", state=JobState.FAILED,
                                       reason="why"))
        assert writer_threads() == []
        await writer.close()

    try:
        asyncio.run(main())
        with sqlite3.connect(tmp_path / "jobs.db") as raw:  # stored in the same text format as SQLAlchemy's
            stored = dict(raw.execute("SELECT job_id, created_at || '|' || updated_at FROM ingest_jobs").fetchall())
        shape = [c.isdigit() for c in stored[reference]]
        assert all([c.isdigit() for c in stored[j]] == shape for j in fresh), stored
        expected = store.get(reference)
        assert expected is not None
        for job_id in fresh:
            job = store.get(job_id)
            assert job is not None and job.created_at.tzinfo is not None
            assert abs((job.created_at - expected.created_at).total_seconds()) < 60
            same = ("pipeline", "state", "received", "accepted", "rejected", "duplicates", "committed", "reason")
            assert [getattr(job, f) for f in same] == [getattr(expected, f) for f in same]
    finally:
        store.close()


def test_job_writer_on_sqlite_leaves_known_ids_and_early_counts_to_the_full_path(tmp_path: Path) -> None:
    """A known id is still refused, alone; counts the consumer recorded before the row are still folded in."""
    store = JobStore.from_dsn(f"sqlite:///{tmp_path / 'jobs.db'}")
    known, counted, fresh = new_id(), new_id(), new_id()
    store.create_jobs([NewJob(known, 1, 1, 0)])
    store.record_committed({counted: 2})

    async def main() -> BaseException | None:
        writer = JobWriter(store)
        (refused,) = await asyncio.gather(writer.create(NewJob(known, 1, 1, 0)), return_exceptions=True)
        await writer.create(NewJob(counted, 2, 2, 0, state=JobState.PUBLISHED))
        await writer.create(NewJob(fresh, 1, 1, 0))
        await writer.close()
        return refused

    try:
        refused = asyncio.run(main())
        assert isinstance(refused, JobExistsError)
        job = store.get(counted)
        assert job is not None and (job.committed, job.state) == (2, JobState.COMMITTED)
        assert store.unknown_commits() == {}
        assert store.get(fresh) is not None
    finally:
        store.close()


def test_job_writer_never_waits_on_the_loop_for_a_lock_another_process_holds(tmp_path: Path) -> None:
    """Another connection holds the SQLite write lock (as a consumer's transaction would): the row goes to the
    writer thread, which waits for the lock while the event loop goes on; it lands once the lock is free."""
    path = tmp_path / "jobs.db"
    store = JobStore.from_dsn(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None)
    job_id = new_id()

    async def main() -> None:
        writer = JobWriter(store)
        other.execute("BEGIN IMMEDIATE")
        # Were the row written on the loop, waiting for the lock would hold the loop, and this test with it,
        # until the busy timeout: the lock is released only below, by this same loop.
        loop = asyncio.get_running_loop()
        create = asyncio.create_task(writer.create(NewJob(job_id, 1, 1, 0)))
        longest_gap, last = 0.0, loop.time()
        for _ in range(20):
            await asyncio.sleep(0.01)
            longest_gap, last = max(longest_gap, loop.time() - last), loop.time()
        assert longest_gap < 5, f"the loop was held {longest_gap:.1f} s (the busy timeout is 30 s)"
        assert not create.done()
        assert writer_threads() != [], "handed to the writer thread"
        other.execute("COMMIT")
        await asyncio.wait_for(create, 30)
        await writer.close()

    try:
        asyncio.run(main())
        assert store.get(job_id) is not None
    finally:
        other.close()
        store.close()


def test_job_writer_on_postgresql_writes_on_the_event_loop(postgres_dsn: str) -> None:
    """On PostgreSQL each group goes out as one call of the server-side function awaited on the loop (no writer
    thread), early counts folded in; a known id falls back to the thread and is refused alone."""
    store = JobStore.from_dsn(postgres_dsn)
    counted, known = new_id(), new_id()
    fresh = [new_id() for _ in range(6)]
    store.create_jobs([NewJob(known, 1, 1, 0)])
    store.record_committed({counted: 3})

    async def main() -> BaseException | None:
        writer = JobWriter(store)
        await asyncio.gather(writer.create(NewJob(counted, 3, 3, 0, state=JobState.PUBLISHED)),
                             *(writer.create(NewJob(j, 1, 1, 0)) for j in fresh))
        assert writer_threads() == []
        (refused,) = await asyncio.gather(writer.create(NewJob(known, 1, 1, 0)), return_exceptions=True)
        await writer.close()
        return refused

    try:
        assert isinstance(asyncio.run(main()), JobExistsError)
        job = store.get(counted)
        assert job is not None and (job.committed, job.state) == (3, JobState.COMMITTED)
        assert all(store.get(j) is not None for j in fresh)
        assert counted not in store.unknown_commits()
    finally:
        store.close()


def test_job_writer_on_postgresql_racing_the_consumer_loses_no_count(postgres_dsn: str) -> None:
    """The event loop's write (one call of the function) while a consumer records the job's counts on another
    connection, released together, many times: every count ends in the job row, through the function's
    advisory locks (without them the consumer's count can land in unknown_job_commits after the fold). The
    consumer starts up to 3 ms after the release, spread over the runs, since the loop wakes later than a thread."""
    store, other = JobStore.from_dsn(postgres_dsn), JobStore.from_dsn(postgres_dsn)

    async def main() -> None:
        writer = JobWriter(store)
        for run in range(60):
            job = NewJob(new_id(), 7, 7, 0, state=JobState.PUBLISHED)
            barrier = threading.Barrier(2)

            def consume(job_id: str = job.job_id, gate: threading.Barrier = barrier, lag: float = run / 20000) -> None:
                gate.wait()
                until = time.perf_counter() + lag
                while time.perf_counter() < until:  # a spin: sleep() is too coarse for this
                    pass
                other.record_committed({job_id: 7})

            async def ingest(row: NewJob = job, gate: threading.Barrier = barrier) -> None:
                await asyncio.to_thread(gate.wait)
                await writer.create(row)

            await asyncio.gather(asyncio.to_thread(consume), ingest())
            row = stored_row(store, job.job_id)
            assert row is not None and (row["committed"], row["state"]) == (7, "committed"), row
            assert job.job_id not in store.unknown_commits()
        await writer.close()

    try:
        asyncio.run(main())
    finally:
        other.close()
        store.close()


def sqlalchemy_statements(store: JobStore) -> list[str]:
    """The statements SQLAlchemy sends from now on (the full path's; the fast path's go around it)."""
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    return statements


def test_job_writer_on_postgresql_writes_through_a_dropped_connection(postgres_dsn: str) -> None:
    """The server ends every connection of the store (a restart, a failover): the next write still lands, once,
    through the writer thread, and the loop's path opens a new connection for the writes after it."""
    store = JobStore.from_dsn(postgres_dsn)
    first, during, after = new_id(), new_id(), new_id()

    async def main() -> tuple[list[str], list[str]]:
        writer = JobWriter(store)
        await writer.create(NewJob(first, 1, 1, 0))  # opens the loop's connection
        assert writer_threads() == []
        with psycopg.connect(postgres_dsn.replace("postgresql+psycopg", "postgresql"), autocommit=True) as admin:
            ended = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'").fetchone()
        assert ended is not None and ended[0] >= 1
        await writer.create(NewJob(during, 2, 2, 0, state=JobState.PUBLISHED))
        fell_back = writer_threads()
        await writer.close()
        writer = JobWriter(store)
        await writer.create(NewJob(after, 3, 3, 0, state=JobState.PUBLISHED))
        on_loop = writer_threads()
        await writer.close()
        return fell_back, on_loop

    try:
        fell_back, on_loop = asyncio.run(main())
        assert fell_back != [], "the write on the dropped connection did not go to the writer thread"
        assert on_loop == [], "the write after the drop did not go through the loop's new connection"
        for job_id, received in ((first, 1), (during, 2), (after, 3)):
            job = store.get(job_id)
            assert job is not None and job.received == received
    finally:
        store.close()


def test_job_writer_on_postgresql_without_the_function_uses_the_full_path(postgres_dsn: str) -> None:
    """A database whose schema predates the function (or lost it): the writes still land, early counts folded,
    through the full path; once `create_tables` made it again, they take the fast path."""
    store = JobStore.from_dsn(postgres_dsn)
    counted, fresh = new_id(), new_id()
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP FUNCTION {CREATE_JOBS_FUNCTION}")
    store.record_committed({counted: 4})

    async def write(*jobs: NewJob) -> None:
        writer = JobWriter(store)
        await asyncio.gather(*(writer.create(job) for job in jobs))
        await writer.close()

    try:
        statements = sqlalchemy_statements(store)
        asyncio.run(write(NewJob(counted, 4, 4, 0, state=JobState.PUBLISHED)))
        assert any("INSERT INTO ingest_jobs" in s for s in statements), statements
        job = store.get(counted)
        assert job is not None and (job.committed, job.state) == (4, JobState.COMMITTED)
        assert counted not in store.unknown_commits()
        store.create_tables()
        statements.clear()
        asyncio.run(write(NewJob(fresh, 1, 1, 0)))
        assert statements == []
        assert store.get(fresh) is not None
    finally:
        store.create_tables()
        store.close()


def test_job_writer_on_postgresql_with_a_dsn_asyncpg_refuses_writes_through_the_thread(postgres_dsn: str) -> None:
    """A libpq parameter asyncpg passes on to the server as a setting (connect_timeout: the server refuses it),
    so the loop's connection cannot be opened: every write still lands, through the writer thread's psycopg."""
    store = JobStore.from_dsn(f"{postgres_dsn}?connect_timeout=10")
    ids = [new_id() for _ in range(12)]

    async def main() -> list[str]:
        writer = JobWriter(store)
        for group in (ids[:4], ids[4:8], ids[8:]):
            await asyncio.gather(*(writer.create(NewJob(job_id, 1, 1, 0)) for job_id in group))
        threads = writer_threads()
        await writer.close()
        return threads

    try:
        assert asyncio.run(main()) != [], "the writes did not go to the writer thread"
        assert all(store.get(job_id) is not None for job_id in ids)
    finally:
        store.close()


def test_count_by_state_counts_every_state(store: JobStore) -> None:
    """The grouped count the consumer's jobs gauge exports: every state present, each job in exactly one.
    (The PostgreSQL database is shared by the module's tests: the test compares counts before and after.)"""
    before = store.count_by_state()
    assert set(before) == set(JobState)
    ids = [new_id() for _ in range(7)]
    states = [JobState.PUBLISHED, JobState.PUBLISHED, JobState.ACCEPTED, JobState.ACCEPTED, JobState.ACCEPTED,
              JobState.FAILED, JobState.ACCEPTED]
    store.create_jobs([NewJob(job_id, 2, 2, 0, state=state) for job_id, state in zip(ids, states, strict=True)])
    store.record_committed({ids[2]: 2, ids[3]: 2, ids[4]: 2})
    after = store.count_by_state()
    delta = {state: after[state] - before[state] for state in JobState}
    assert delta == {JobState.ACCEPTED: 1, JobState.PUBLISHED: 2, JobState.COMMITTED: 3, JobState.FAILED: 1}
