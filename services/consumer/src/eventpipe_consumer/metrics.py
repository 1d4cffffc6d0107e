"""Prometheus metrics of one consumer process (eventpipe_consumer_*), on their own registry.

MillisBehindLatest per shard is the gauge the operator's autoscaler reads.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


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
        # The same lag in base units (seconds), what the operator's scaler, alerts and printer column read.
        self.lag_seconds = Gauge("eventpipe_consumer_lag_seconds",
                                 "Seconds the last GetRecords was behind the tip of the shard, per owned shard.",
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

    def serve(self, host: str, port: int) -> WSGIServer:
        """Serve /metrics in a daemon thread; returns the server (shutdown() stops it)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
