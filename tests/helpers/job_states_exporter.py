"""The consumer's job-state gauge served on its own, for the Pipeline page's AppTest: a real SQLite job store
with jobs in the states given, the consumer's real metrics server (ConsumerMetrics.serve + watch_jobs) on
127.0.0.1. Run with the services virtualenv (the dashboard's has no consumer):

    .venvs/services/bin/python -m tests.helpers.job_states_exporter --port P --db jobs.db \
        --accepted 1 --published 2 --committed 3 --failed 1

Serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading
import uuid
from pathlib import Path

from eventpipe_consumer.metrics import ConsumerMetrics
from eventpipe_jobs.schema import JobState, NewJob
from eventpipe_jobs.store import JobStore


def make_jobs(store: JobStore, accepted: int = 0, published: int = 0, committed: int = 0, failed: int = 0) -> None:
    """Create jobs in the states given, each as the service would leave it (committed through the consumer's
    record_committed)."""
    for n in range(accepted + published + committed + failed):
        job_id = str(uuid.uuid4())
        if n < accepted:
            store.create_jobs([NewJob(job_id, 1, 1, 0)])
        elif n < accepted + published:
            store.create_jobs([NewJob(job_id, 1, 1, 0, state=JobState.PUBLISHED)])
        elif n < accepted + published + committed:
            store.create_jobs([NewJob(job_id, 1, 1, 0)])
            store.record_committed({job_id: 1})
        else:
            store.create_jobs([NewJob(job_id, 1, 1, 0, state=JobState.FAILED, reason="publish failed")])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True)
    for state in ("accepted", "published", "committed", "failed"):
        parser.add_argument(f"--{state}", type=int, default=0)
    args = parser.parse_args()
    store = JobStore.from_dsn(f"sqlite:///{args.db}")
    make_jobs(store, args.accepted, args.published, args.committed, args.failed)
    metrics = ConsumerMetrics()
    metrics.watch_jobs(store.count_by_state, refresh_seconds=0)
    server = metrics.serve("127.0.0.1", args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    stop.wait()
    server.shutdown()
    store.close()


if __name__ == "__main__":
    main()
