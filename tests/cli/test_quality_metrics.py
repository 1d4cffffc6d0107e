"""The transform loop's /metrics: each suite's last run from a real quality_results table, scraped over HTTP."""

from __future__ import annotations

import datetime as dt
import re
import urllib.request
from pathlib import Path

import duckdb
from eventpipe_cli.quality_metrics import TransformMetrics, latest_suite_runs

from tests.helpers.servers import REPO_ROOT, free_port


def results_ddl() -> str:
    """The writer's own DDL (eventpipe_quality.results), read from its source: the analytics venv is not here."""
    text = (REPO_ROOT / "gx" / "src" / "eventpipe_quality" / "results.py").read_text()
    match = re.search(r'RESULTS_DDL = f"""(.*?)"""', text, re.S)
    assert match
    return match.group(1).replace("{RESULTS_TABLE}", "quality_results")


def write(db: Path, rows: list[tuple[object, ...]]) -> None:
    connection = duckdb.connect(str(db))
    connection.execute(results_ddl())
    connection.executemany(f"INSERT INTO quality_results VALUES ({', '.join('?' for _ in rows[0])})", rows)
    connection.close()


def row(run: str, suite: str, expectation: str, success: bool, severity: str, at: dt.datetime) -> tuple[object, ...]:
    return (run, suite, "asset", expectation, "event_id", success, severity, "0", 0, at, None, None)


def test_latest_run_per_suite_is_exported(tmp_path: Path) -> None:
    assert latest_suite_runs(tmp_path / "missing.duckdb") == []
    early, late = dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC), dt.datetime(2026, 5, 1, 11, tzinfo=dt.UTC)
    db = tmp_path / "results.duckdb"
    write(db, [
        row("s1", "staging", "not_null", False, "critical", early),   # an old failure, superseded by s2
        row("s2", "staging", "not_null", True, "critical", late),
        row("s2", "staging", "unique", False, "warning", late),
        row("m1", "marts", "not_null", False, "critical", early),
        row("m1", "marts", "unique", True, "critical", early),
    ])
    runs = {run.suite: run for run in latest_suite_runs(db)}
    assert (runs["staging"].passed, runs["staging"].failed, runs["staging"].success) == (1, 1, True)
    assert (runs["marts"].critical_failed, runs["marts"].success) == (1, False)

    metrics = TransformMetrics()
    metrics.update_quality(list(runs.values()))
    metrics.record_run({"ok": False, "steps": [{"step": "quality marts", "exit_code": 1}]})
    port = free_port()
    server = metrics.serve("127.0.0.1", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'eventpipe_quality_suite_success{suite="staging"} 1.0' in text
    assert 'eventpipe_quality_suite_success{suite="marts"} 0.0' in text
    assert 'eventpipe_quality_expectations{result="failed",suite="staging"} 1.0' in text
    assert 'eventpipe_quality_critical_failures{suite="marts"} 1.0' in text
    stamp = re.search(r'eventpipe_quality_last_run_timestamp_seconds\{suite="staging"\} (\S+)', text)
    assert stamp and float(stamp.group(1)) == late.timestamp()
    assert 'eventpipe_transform_runs_total{result="failed"} 1.0' in text
    assert 'eventpipe_transform_step_failures_total{step="quality marts"} 1.0' in text
