"""Helpers shared by the GX tests: run a suite in-process on a DuckDB file, read captured logs."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

from eventpipe_quality.results import Outcome, RunReport
from eventpipe_quality.runner import RunOptions, run_checks
from eventpipe_quality.suites import Check
from eventpipe_quality.warehouse import DuckDBWarehouse
from hypothesis import HealthCheck, Phase, settings

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def gx_examples(count: int) -> settings:
    """Hypothesis settings for properties whose every example is a full GX run (1-3 s): few examples, and no
    shrinking phase (shrinking a failure would take minutes; the failing example is printed as drawn)."""
    return settings(max_examples=count, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def run_on(db: Path, suite: str, checks: list[Check], quality_dir: Path, assets_dir: Path,
           rejected_rows: int | None = None) -> RunReport:
    with DuckDBWarehouse(db) as warehouse:
        return run_checks(suite, checks, warehouse, RunOptions(quality_dir=quality_dir, assets_dir=assets_dir),
                          rejected_rows=rejected_rows, rejected_source="test", location=str(db), now=NOW)


def outcomes_for(report: RunReport, asset: str, expectation: str) -> dict[str | None, Outcome]:
    return {o.column: o for o in report.outcomes if o.asset == asset and o.expectation == expectation}


def log_records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
