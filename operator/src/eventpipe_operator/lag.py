"""Consumer lag and stopped shards from the consumers' own Prometheus metrics (eventpipe_consumer_lag_seconds
per shard, eventpipe_consumer_stopped_shards per pod).

Parsing is pure (`lag_from_metrics_text`, `stopped_from_metrics_text`); `scrape_consumers` fetches each running
consumer pod's /metrics once. The pipeline's lag is the worst shard's, in seconds; None when no consumer reported
one. Stopped shards are summed over the pods: a shard stops only for errors that are not its data's (the table
is gone, credentials refused), so the operator shows them in status instead of leaving them to the logs.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

STOPPED_METRIC = "eventpipe_consumer_stopped_shards"


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


def stopped_from_metrics_text(text: str) -> int:
    """Shards one consumer pod has stopped (its eventpipe_consumer_stopped_shards gauge; 0 when absent)."""
    stopped = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == STOPPED_METRIC:
            stopped += sum(s.value for s in family.samples if s.name == STOPPED_METRIC and s.value == s.value)
    return int(stopped)


@dataclass(frozen=True)
class ConsumerScrape:
    lag_seconds: float | None            # the worst shard's lag over every pod that answered
    stopped_shards: int                  # summed over the pods that answered
    errors: list[str] = field(default_factory=list)   # pods that did not answer


def scrape_consumers(pod_ips: Iterable[str], port: int, lag_metric: str, timeout: float) -> ConsumerScrape:
    """One GET of /metrics per consumer pod: lag and stopped shards, and the pods that did not answer."""
    values: list[float | None] = []
    stopped = 0
    errors: list[str] = []
    for ip in pod_ips:
        url = f"http://{ip}:{port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                text = resp.read().decode("utf-8", "replace")
            values.append(lag_from_metrics_text(text, lag_metric))
            stopped += stopped_from_metrics_text(text)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
    return ConsumerScrape(worst_lag(values), stopped, errors)
