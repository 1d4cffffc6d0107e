"""Consumer lag from the consumers' own Prometheus metrics (eventpipe_consumer_lag_seconds per shard).

Parsing is pure (`lag_from_metrics_text`); `scrape_lag` fetches each running consumer pod's /metrics. The
pipeline's lag is the worst shard's, in seconds; None when no consumer reported one.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable

from prometheus_client.parser import text_string_to_metric_families


def lag_from_metrics_text(text: str, metric: str) -> float | None:
    """The highest value of `metric` in one Prometheus text exposition, in seconds: a `*_seconds` gauge as it
    is, anything else (Kinesis's MillisBehindLatest, kept for old consumers) read as milliseconds."""
    worst: float | None = None
    for family in text_string_to_metric_families(text):
        if family.name != metric:
            continue
        for sample in family.samples:
            if sample.name == metric and sample.value == sample.value:  # skip NaN
                worst = sample.value if worst is None else max(worst, sample.value)
    if worst is None:
        return None
    return worst if metric.endswith("_seconds") else worst / 1000.0


def worst_lag(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def scrape_lag(pod_ips: Iterable[str], port: int, metric: str, timeout: float) -> tuple[float | None, list[str]]:
    """(worst lag in seconds over every pod that answered, errors of pods that did not)."""
    values: list[float | None] = []
    errors: list[str] = []
    for ip in pod_ips:
        url = f"http://{ip}:{port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                values.append(lag_from_metrics_text(resp.read().decode("utf-8", "replace"), metric))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
    return worst_lag(values), errors
