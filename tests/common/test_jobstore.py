"""The job store on SQLite and on a real PostgreSQL server: state machine, atomic counts, several writers."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eventpipe_common.jobstore import JobExistsError, JobState, JobStore, jobs_table, unknown_commits_table
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


def test_lifecycle_accepted_published_committed(store: JobStore) -> None:
    job_id = new_id()
    job = store.create_job(job_id, received=10, accepted=8, rejected=2, pipeline="shop")
    assert (job.state, job.received, job.accepted, job.rejected, job.committed) == (JobState.ACCEPTED, 10, 8, 2, 0)
    assert store.mark_published(job_id)
    assert store.get(job_id).state == JobState.PUBLISHED  # type: ignore[union-attr]
    store.record_committed({job_id: 5})
    job = store.get(job_id)
    assert job is not None and (job.state, job.committed) == (JobState.PUBLISHED, 5)
    store.record_committed({job_id: 3})
    job = store.get(job_id)
    assert job is not None and (job.state, job.committed) == (JobState.COMMITTED, 8)
    assert job.created_at.tzinfo is not None


def test_unknown_job_is_none(store: JobStore) -> None:
    assert store.get(new_id()) is None


def test_duplicate_create_raises(store: JobStore) -> None:
    job_id = new_id()
    store.create_job(job_id, 1, 1, 0)
    with pytest.raises(JobExistsError, match=job_id):
        store.create_job(job_id, 1, 1, 0)


def test_consumer_faster_than_publish_ack(store: JobStore) -> None:
    """The consumer may commit before ingest marks the job published; mark_published never moves it back."""
    job_id = new_id()
    store.create_job(job_id, 3, 3, 0)
    store.record_committed({job_id: 3})
    assert not store.mark_published(job_id)
    assert store.get(job_id).state == JobState.COMMITTED  # type: ignore[union-attr]


def test_mark_failed_keeps_reason_and_counts_later_commits(store: JobStore) -> None:
    job_id = new_id()
    store.create_job(job_id, 4, 4, 0)
    assert store.mark_failed(job_id, "publish deadline of 5.0s exceeded")
    store.record_committed({job_id: 4})
    job = store.get(job_id)
    assert job is not None
    assert (job.state, job.reason, job.committed) == (JobState.FAILED, "publish deadline of 5.0s exceeded", 4)


def test_mark_failed_does_not_undo_committed(store: JobStore) -> None:
    job_id = new_id()
    store.create_job(job_id, 1, 1, 0)
    store.record_committed({job_id: 1})
    assert not store.mark_failed(job_id, "late")
    assert store.get(job_id).state == JobState.COMMITTED  # type: ignore[union-attr]


def test_unknown_job_ids_are_recorded_and_reconciled(store: JobStore) -> None:
    known, unknown = new_id(), new_id()
    store.create_job(known, 2, 2, 0)
    store.record_committed({known: 1, unknown: 7})
    store.record_committed({unknown: 3, "": 5})
    assert store.unknown_commits()[unknown] == 10
    assert "" not in store.unknown_commits()
    assert store.get(known).committed == 1  # type: ignore[union-attr]
    # The job row appears later (e.g. restored from another store): create_job folds the count in.
    job = store.create_job(unknown, 10, 10, 0)
    assert (job.committed, job.state) == (10, JobState.COMMITTED)
    assert unknown not in store.unknown_commits()


def test_reconcile_folds_counts_of_jobs_created_later(store: JobStore) -> None:
    job_id = new_id()
    store.record_committed({job_id: 2})
    # Simulate the create/record race: the job row exists but the count landed among the unknowns.
    with store.engine.begin() as conn:
        now = datetime.now(UTC)
        conn.execute(jobs_table.insert().values(job_id=job_id, pipeline="", state="published", received=2,
                                                accepted=2, rejected=0, duplicates=0, committed=0,
                                                created_at=now, updated_at=now))
    assert store.unknown_commits()[job_id] == 2
    assert store.reconcile() >= 1
    job = store.get(job_id)
    assert job is not None and (job.committed, job.state) == (2, JobState.COMMITTED)


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
    for job_id in jobs:
        store.create_job(job_id, 10_000, 10_000, 0)
        store.mark_published(job_id)
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
    store.create_job(job_id, accepted, accepted, 0)
    store.mark_published(job_id)
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
