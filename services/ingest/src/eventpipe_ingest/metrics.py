"""Prometheus metrics of the ingest service (eventpipe_ingest_*), one registry per app instance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("eventpipe_ingest_requests_total", "HTTP requests by route and status.",
                                ["route", "method", "status"], registry=r)
        self.events_accepted = Counter("eventpipe_ingest_events_accepted_total",
                                       "Events published to the stream and acknowledged.", registry=r)
        self.events_rejected = Counter("eventpipe_ingest_events_rejected_total",
                                       "Events refused by validation (or too large for a record).", registry=r)
        self.events_duplicate = Counter("eventpipe_ingest_events_duplicate_total",
                                        "Events dropped because the same request held their event_id before.",
                                        registry=r)
        self.publish_latency = Histogram(
            "eventpipe_ingest_publish_latency_seconds", "Time to get every record of a request acknowledged.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=r)
        self.publish_failures = Counter("eventpipe_ingest_publish_failures_total",
                                        "Requests answered 503 because publishing did not finish.", ["reason"],
                                        registry=r)
        self.kinesis_calls = Counter("eventpipe_ingest_kinesis_put_records_calls_total",
                                     "PutRecords calls sent (each may carry the calls of several requests).",
                                     registry=r)
        self.kinesis_merged_calls = Counter("eventpipe_ingest_kinesis_put_records_merged_total",
                                            "Publisher calls that went out merged into another request's call.",
                                            registry=r)
        self.kinesis_retries = Counter("eventpipe_ingest_kinesis_retried_records_total",
                                       "Records sent again after a failed call or a partial failure.", registry=r)
        self.kinesis_throttles = Counter("eventpipe_ingest_kinesis_throttles_total",
                                         "ProvisionedThroughputExceeded answers (per record or per call).",
                                         registry=r)
        self.job_store_errors = Counter("eventpipe_ingest_job_store_errors_total",
                                        "Job store calls that raised (the client got 503), by operation.",
                                        ["operation"], registry=r)
        self.in_flight = Gauge("eventpipe_ingest_in_flight_requests", "Ingest requests being processed.",
                               registry=r)
        self.backpressure = Counter("eventpipe_ingest_backpressure_total",
                                    "Requests refused with 429 because too many were in flight.", registry=r)
        self.body_bytes = Counter("eventpipe_ingest_request_body_bytes_total",
                                  "Request body bytes received on ingest (as sent, before decompression).",
                                  registry=r)
