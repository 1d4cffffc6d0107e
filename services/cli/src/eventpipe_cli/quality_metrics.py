"""Prometheus metrics of the transform loop: dbt/GX runs, and each quality suite's last run (eventpipe_quality_*).

The loop reads the latest run of every suite from the quality-results table (`<state>/quality/results.duckdb`,
written by eventpipe_quality) after each transform run, so Prometheus sees quality the way it sees the services:
the alert EventPipeQualityFailure and the Grafana quality dashboard read these gauges.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

LATEST_RUNS_SQL = """
with latest as (
    select suite, arg_max(run_id, run_at) as run_id from quality_results group by suite
)
select r.suite, epoch(max(r.run_at)) as run_at,
       count(*) filter (where r.success) as passed,
       count(*) filter (where not r.success) as failed,
       count(*) filter (where not r.success and r.severity = 'critical') as critical_failed
from quality_results r join latest l on r.suite = l.suite and r.run_id = l.run_id
group by r.suite
order by r.suite
"""


@dataclass(frozen=True)
class SuiteRun:
    suite: str
    run_at: float
    """Unix time (read as a number: TIMESTAMPTZ values would need pytz in this image)."""
    passed: int
    failed: int
    critical_failed: int

    @property
    def success(self) -> bool:
        """As eventpipe_quality decides: a run succeeds unless a critical expectation failed."""
        return self.critical_failed == 0


def latest_suite_runs(db_path: Path) -> list[SuiteRun]:
    """The latest run of each suite; [] when no run was recorded yet."""
    import duckdb

    if not db_path.exists():
        return []
    connection = duckdb.connect(str(db_path), read_only=True)
    try:
        rows: list[tuple[Any, ...]] = connection.execute(LATEST_RUNS_SQL).fetchall()
    except duckdb.CatalogException:
        return []
    finally:
        connection.close()
    return [SuiteRun(str(r[0]), float(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]


class TransformMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("eventpipe_transform_runs_total", "Transform runs (dbt build + GX suites), by result.",
                            ["result"], registry=r)
        self.step_failures = Counter("eventpipe_transform_step_failures_total", "Failed dbt/GX steps, by step.",
                                     ["step"], registry=r)
        self.suite_success = Gauge("eventpipe_quality_suite_success",
                                   "1 when the suite's last run failed no critical expectation, else 0.",
                                   ["suite"], registry=r)
        self.expectations = Gauge("eventpipe_quality_expectations",
                                  "Expectations of the suite's last run, by result (passed, failed).",
                                  ["suite", "result"], registry=r)
        self.critical_failures = Gauge("eventpipe_quality_critical_failures",
                                       "Critical expectations that failed in the suite's last run.", ["suite"],
                                       registry=r)
        self.last_run = Gauge("eventpipe_quality_last_run_timestamp_seconds", "When the suite last ran (Unix time).",
                              ["suite"], registry=r)

    def serve(self, host: str, port: int) -> WSGIServer:
        """Serve /metrics in a daemon thread; returns the server (shutdown() stops it)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server

    def record_run(self, record: dict[str, Any]) -> None:
        self.runs.labels("ok" if record.get("ok") else "failed").inc()
        for step in record.get("steps", []):
            if step.get("exit_code") != 0:
                self.step_failures.labels(str(step.get("step"))).inc()

    def update_quality(self, runs: list[SuiteRun]) -> None:
        for run in runs:
            self.suite_success.labels(run.suite).set(1 if run.success else 0)
            self.expectations.labels(run.suite, "passed").set(run.passed)
            self.expectations.labels(run.suite, "failed").set(run.failed)
            self.critical_failures.labels(run.suite).set(run.critical_failed)
            self.last_run.labels(run.suite).set(run.run_at)
