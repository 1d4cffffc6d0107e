"""The operator's own Prometheus metrics (reconciles, errors, durations, scaling, phases) on /metrics.

Per-pipeline series are labelled `pipeline_namespace`, not `namespace`: Prometheus sets `namespace` to the
scrape target's (the operator's) namespace, and the two would collide (exported_namespace).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry()

RECONCILES = Counter("eventpipe_operator_reconciles_total", "Reconciles of EventPipelines, by cause and result.",
                     ["cause", "result"], registry=REGISTRY)
ERRORS = Counter("eventpipe_operator_errors_total", "Errors while reconciling, by step.", ["step"], registry=REGISTRY)
DURATION = Histogram("eventpipe_operator_reconcile_duration_seconds", "Time one reconcile took.", ["cause"],
                     registry=REGISTRY, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
APPLIES = Counter("eventpipe_operator_applied_objects_total", "Children applied (server-side apply), by kind.",
                  ["kind"], registry=REGISTRY)
SCALINGS = Counter("eventpipe_operator_consumer_scalings_total", "Consumer replica changes, by reason.",
                   ["reason"], registry=REGISTRY)
PIPELINES = Gauge("eventpipe_operator_pipeline_ready", "1 when the pipeline's Ready condition is True.",
                  ["pipeline_namespace", "pipeline"], registry=REGISTRY)
LAG = Gauge("eventpipe_operator_consumer_lag_seconds", "Worst shard lag the operator last read, per pipeline.",
            ["pipeline_namespace", "pipeline"], registry=REGISTRY)


def forget_pipeline(namespace: str, name: str) -> None:
    """Drop a deleted pipeline's series (a gauge would otherwise report it forever)."""
    for gauge in (PIPELINES, LAG):
        try:
            gauge.remove(namespace, name)
        except KeyError:
            continue


_SERVING: set[tuple[str, int]] = set()


def serve(host: str, port: int) -> None:
    """Expose /metrics on host:port from a daemon thread (once per process: kopf may restart its startup)."""
    if (host, port) in _SERVING:
        return
    start_http_server(port, addr=host, registry=REGISTRY)
    _SERVING.add((host, port))
