"""Prometheus metrics of one consumer process (eventpipe_consumer_*), on their own registry.

eventpipe_consumer_lag_seconds per shard is the gauge the operator's autoscaler reads. /healthz fails when the
event loop stopped beating (the HTTP server runs in a thread, so answering alone proves nothing).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

JOB_STATES_REFRESH_SECONDS = 15.0


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records_read = Counter("eventpipe_consumer_records_read_total", "Kinesis records read.",
                                    ["shard"], registry=r)
        self.bytes_read = Counter("eventpipe_consumer_bytes_read_total", "Kinesis record bytes read.",
                                  ["shard"], registry=r)
        self.records_committed = Counter("eventpipe_consumer_records_committed_total",
                                         "Events committed to raw_events.", registry=r)
        self.records_rejected = Counter("eventpipe_consumer_records_rejected_total",
                                        "Records committed to raw_events_rejected.", registry=r)
        self.duplicates = Counter("eventpipe_consumer_duplicates_total",
                                  "Events dropped as re-sends (same event_id) in a batch or the per-shard window.",
                                  ["shard"], registry=r)
        self.millis_behind = Gauge("eventpipe_consumer_millis_behind_latest",
                                   "Kinesis MillisBehindLatest of the last GetRecords, per owned shard.",
                                   ["shard"], registry=r)
        # What the operator's scaler, alerts and printer column read: MillisBehindLatest in seconds, or the age
        # of the newest record read when larger (kinesis.lag_seconds: kinesalite always answers 0 behind).
        self.lag_seconds = Gauge("eventpipe_consumer_lag_seconds",
                                 "Seconds the last GetRecords was behind the tip of the shard (MillisBehindLatest, "
                                 "or the age of the newest record it returned when larger), per owned shard.",
                                 ["shard"], registry=r)
        self.commit_latency = Histogram(
            "eventpipe_consumer_commit_latency_seconds", "Write plus commit time of one commit cycle.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30), registry=r)
        self.commits = Counter("eventpipe_consumer_commits_total", "Iceberg commits made.", ["table"], registry=r)
        self.data_files = Counter("eventpipe_consumer_data_files_total", "Data files committed.", ["table"],
                                  registry=r)
        self.commit_conflicts = Counter("eventpipe_consumer_commit_conflicts_total",
                                        "CommitFailedException from a concurrent writer, retried.", registry=r)
        self.commit_failures = Counter("eventpipe_consumer_commit_failures_total",
                                       "Failed write/commit attempts (each retry counts).", registry=r)
        self.failed_batches = Counter("eventpipe_consumer_failed_batches_total",
                                      "Batches given up after the retries; their shards were stopped.", registry=r)
        self.leases = Gauge("eventpipe_consumer_leases", "Shard leases this process holds.", registry=r)
        # Both tables' series exist from the start at 0: a counter born at its first commit hides that commit
        # from rate()/increase(), and the alert EventPipeNoCommitWhileEventsArrive would see no commit at all.
        for table in ("raw_events", "raw_events_rejected"):
            self.commits.labels(table)
            self.data_files.labels(table)
        self.stopped_shards = Gauge(
            "eventpipe_consumer_stopped_shards",
            "Shards this process stopped after a failure that is not the records' content (readiness fails).",
            registry=r)
        self.quarantined = Counter(
            "eventpipe_consumer_quarantined_total",
            "Events the consumer could not process or write, sent to raw_events_rejected (source consumer).",
            ["stage"], registry=r)
        self.job_store_errors = Counter("eventpipe_consumer_job_store_errors_total",
                                        "Job store operations of this process that failed.", ["operation"],
                                        registry=r)
        self.ready: Callable[[], tuple[bool, dict[str, str]]] = lambda: (True, {})
        # Set by the event loop (app.heartbeat) every second; /healthz fails when it is older than this.
        self.loop_beat = time.monotonic()
        self.stale_after_seconds = 60.0

    def watch_jobs(self, count_by_state: Callable[[], Mapping[str, int]],
                   refresh_seconds: float = JOB_STATES_REFRESH_SECONDS) -> None:
        """Export eventpipe_consumer_jobs{state}: the job store's jobs per state (JobStore.count_by_state)."""
        self.registry.register(JobStatesCollector(count_by_state, refresh_seconds, self.job_store_errors))

    def alive(self) -> tuple[bool, dict[str, str]]:
        """Liveness: the event loop beat within stale_after_seconds."""
        age = time.monotonic() - self.loop_beat
        return age <= self.stale_after_seconds, ({} if age <= self.stale_after_seconds else
                                                 {"event_loop": f"no beat for {age:.0f}s"})

    def serve(self, host: str, port: int) -> WSGIServer:
        """Serve /metrics, and /readyz (503 with the stopped shards while any is stopped), in a daemon thread;
        returns the server (shutdown() stops it)."""
        metrics_app = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if environ.get("PATH_INFO") in ("/readyz", "/healthz"):
                ok, stopped = self.ready() if environ["PATH_INFO"] == "/readyz" else self.alive()
                body = json.dumps({"ready": ok, "stopped_shards": stopped}).encode()
                start_response("200 OK" if ok else "503 Service Unavailable",
                               [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
            result: Iterable[bytes] = metrics_app(environ, start_response)
            return result

        server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
        return server


class JobStatesCollector(Collector):
    """eventpipe_consumer_jobs{state}, read from the job store when Prometheus scrapes (in the metrics server's
    thread, never on the event loop), at most once per `refresh_seconds`: the count reads the whole jobs table.

    The job store is shared, so every consumer exports the same numbers: aggregate with max, not sum. A failed
    read exports nothing (a stale number would look current) and counts in
    eventpipe_consumer_job_store_errors_total{operation="count_by_state"}.
    """

    def __init__(self, count_by_state: Callable[[], Mapping[str, int]], refresh_seconds: float,
                 errors: Counter) -> None:
        self._count = count_by_state
        self._refresh = refresh_seconds
        self._errors = errors
        self._lock = threading.Lock()
        self._cached: tuple[float, Mapping[str, int]] | None = None

    def _counts(self) -> Mapping[str, int] | None:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self._refresh:
                try:
                    self._cached = (now, self._count())
                except SQLAlchemyError:  # the database refused or is gone: counted, and no sample exported
                    self._errors.labels("count_by_state").inc()
                    self._cached = None
                    return None
            return self._cached[1]

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily("eventpipe_consumer_jobs", JOBS_HELP, labels=["state"])]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("eventpipe_consumer_jobs", JOBS_HELP, labels=["state"])
        counts = self._counts()
        if counts is not None:
            for state, n in sorted(counts.items()):
                family.add_metric([str(state)], float(n))
        yield family


JOBS_HELP = ("Ingest jobs in the job store per state (accepted, published, committed, failed); the same in every "
             "consumer, read at most every 15 s.")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds: no access log on stderr."""
