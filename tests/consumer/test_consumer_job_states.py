"""eventpipe_consumer_jobs{state}: the job store's jobs per state, scraped over real HTTP from the consumer's
metrics server, read from a real job store (SQLite)."""

from __future__ import annotations

import sqlite3
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eventpipe_consumer.metrics import ConsumerMetrics
from eventpipe_jobs.schema import JobState
from eventpipe_jobs.store import JobStore
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.job_states_exporter import make_jobs
from tests.helpers.servers import free_port


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def job_samples(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    return {dict(labels)["state"]: value for (name, labels), value in samples.items()
            if name == "eventpipe_consumer_jobs"}


@contextmanager
def gauge_server(db: Path, refresh_seconds: float) -> Iterator[tuple[JobStore, int]]:
    """A real SQLite job store and the consumer's real metrics server watching it, on a free port."""
    store = JobStore.from_dsn(f"sqlite:///{db}")
    metrics = ConsumerMetrics()
    metrics.watch_jobs(store.count_by_state, refresh_seconds=refresh_seconds)
    port = free_port()
    server = metrics.serve("127.0.0.1", port)
    try:
        yield store, port
    finally:
        server.shutdown()
        store.close()


def test_jobs_per_state_are_scraped_from_the_job_store(tmp_path: Path) -> None:
    with gauge_server(tmp_path / "jobs.db", refresh_seconds=0) as (store, port):
        make_jobs(store, accepted=1, published=2, committed=3, failed=1)
        assert job_samples(scrape(port)) == {"accepted": 1, "published": 2, "committed": 3, "failed": 1}
        make_jobs(store, published=0, committed=4, failed=0)
        assert job_samples(scrape(port))["committed"] == 7


def test_a_cached_count_is_served_until_the_refresh(tmp_path: Path) -> None:
    """Scrapes within the refresh interval do not read the table again (the count reads every row)."""
    with gauge_server(tmp_path / "jobs.db", refresh_seconds=3600) as (store, port):
        make_jobs(store, published=1, committed=0, failed=0)
        assert job_samples(scrape(port))["published"] == 1
        make_jobs(store, published=5, committed=0, failed=0)
        assert job_samples(scrape(port))["published"] == 1
        assert store.count_by_state()[JobState.PUBLISHED] == 6


def test_a_job_store_that_fails_exports_no_number_and_counts_the_error(tmp_path: Path) -> None:
    """The jobs table is gone (a real database error): no stale number is exported, the error is counted,
    and the other metrics are still served."""
    path = tmp_path / "jobs.db"
    with gauge_server(path, refresh_seconds=0) as (store, port):
        make_jobs(store, published=1, committed=1, failed=0)
        assert job_samples(scrape(port))["committed"] == 1
        with sqlite3.connect(path) as connection:
            connection.execute("DROP TABLE ingest_jobs")
        assert job_samples(scrape(port)) == {}
        # The counter is collected before the read that fails in the same scrape: the next scrape shows it.
        samples = scrape(port)
        assert job_samples(samples) == {}
        assert samples[("eventpipe_consumer_job_store_errors_total", (("operation", "count_by_state"),))] >= 1
        assert ("eventpipe_consumer_leases", ()) in samples
