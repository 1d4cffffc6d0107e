"""A small client of Prometheus's HTTP API (/api/v1/query, /api/v1/query_range) and the Pipeline page's queries.

Instant queries are evaluated at a time a little in the past (`settled_time`): by then every scrape of that
moment is stored, so the number the page shows is the number Prometheus answers for the same query and time.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import pandas as pd

SETTLE_SECONDS = 15

THROUGHPUT_IN = "sum(rate(eventpipe_ingest_events_accepted_total[1m]))"
THROUGHPUT_OUT = "sum(rate(eventpipe_consumer_records_committed_total[1m]))"
PUBLISH_P95 = "histogram_quantile(0.95, sum by (le) (rate(eventpipe_ingest_publish_latency_seconds_bucket[5m])))"
COMMIT_P95 = "histogram_quantile(0.95, sum by (le) (rate(eventpipe_consumer_commit_latency_seconds_bucket[5m])))"
LAG_PER_SHARD = "max by (shard) (eventpipe_consumer_lag_seconds)"
COMMITS_PER_MINUTE = "sum by (table) (rate(eventpipe_consumer_commits_total[5m])) * 60"
TOTALS = {
    "accepted": "sum(eventpipe_ingest_events_accepted_total)",
    "rejected at ingest": "sum(eventpipe_ingest_events_rejected_total)",
    "duplicates at ingest": "sum(eventpipe_ingest_events_duplicate_total)",
    "committed": "sum(eventpipe_consumer_records_committed_total)",
    "rejected records committed": "sum(eventpipe_consumer_records_rejected_total)",
    "failed batches": "sum(eventpipe_consumer_failed_batches_total)",
}
# Ingest jobs per state, read from the job store by each consumer (every consumer exports the same numbers).
JOBS_BY_STATE = "max by (state) (eventpipe_consumer_jobs)"
JOB_STATES = ("accepted", "published", "committed", "failed")
UP = "up"
ALERTS = 'ALERTS{alertstate="firing"}'


class PrometheusUnavailableError(RuntimeError):
    """Prometheus did not answer, or refused the query; the message says which."""


def settled_time(now: float | None = None) -> float:
    """A whole second SETTLE_SECONDS ago (scrape interval 5 s: every sample up to then is stored)."""
    return float(math.floor(now if now is not None else time.time()) - SETTLE_SECONDS)


@dataclass(frozen=True)
class Prometheus:
    url: str
    timeout: float = 5.0

    def _get(self, path: str, params: dict[str, str]) -> Any:
        address = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise PrometheusUnavailableError(f"Prometheus refused the query ({exc.code}): {detail}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PrometheusUnavailableError(f"Prometheus at {self.url} is unreachable: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusUnavailableError(f"Prometheus answered {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
        return result

    def scalar(self, promql: str, at: float | None = None) -> float | None:
        """The single value of an aggregated query; None when it returned no series."""
        result = self.query(promql, at)
        return float(result[0]["value"][1]) if result else None

    def range(self, promql: str, start: float, end: float, step: float) -> pd.DataFrame:
        """A long frame: time (UTC), series (its labels), value."""
        data = self._get("/api/v1/query_range", {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                                  "step": f"{step:g}"})
        rows = []
        for series in data["result"]:
            name = series_name(series["metric"])
            for stamp, value in series["values"]:
                rows.append({"time": pd.Timestamp(float(stamp), unit="s", tz="UTC"), "series": name,
                             "value": float(value)})
        frame = pd.DataFrame(rows, columns=["time", "series", "value"])
        # Typed even when empty: concatenated with a frame that has rows, an untyped empty column would make the
        # time column plain objects (the Pipeline page failed so when the consumer was scraped and ingest not).
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        return frame


def series_name(labels: dict[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k not in ("__name__", "job", "instance")}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "total"


def format_rate(value: float | None) -> str:
    """How the page prints an events/s figure; the browser test reads it back with parse_rate."""
    if value is None or math.isnan(value):
        return "no data"
    return f"{value:,.2f}"


def job_states(result: list[dict[str, Any]]) -> dict[str, int] | None:
    """Jobs per state from JOBS_BY_STATE's answer, in the lifecycle's order (a state no job is in: 0); None when
    no consumer exports the gauge."""
    if not result:
        return None
    found = {series["metric"].get("state", ""): int(float(series["value"][1])) for series in result}
    return {state: found.get(state, 0) for state in JOB_STATES}


def format_job_states(states: dict[str, int]) -> str:
    """The caption the Pipeline page shows (and the browser test compares with Prometheus's answer)."""
    return "Jobs: " + ", ".join(f"{state} {n:,}" for state, n in states.items())


def parse_rate(text: str) -> float | None:
    return None if text == "no data" else float(text.replace(",", ""))
