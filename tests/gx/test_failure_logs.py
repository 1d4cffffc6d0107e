"""Property 41: every quality failure is logged with its details (suite, batch, expectation, column, observed
value, a sample of the failing values), as JSON lines of the `quality` component."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from eventpipe_quality.runner import log_failures
from eventpipe_quality.suites import SuiteParams, staging_suite
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers.gx_support import NOW, gx_examples, log_records, run_on
from tests.helpers.warehouse_data import EVENT_TYPES, event_row, user_row, write_staging

PARAMS = SuiteParams(now=NOW, event_types=EVENT_TYPES)


@given(n=st.integers(min_value=6, max_value=25), st_data=st.data())
@gx_examples(8)
def test_failures_are_logged_with_details(n: int, st_data: st.DataObject, tmp_path_factory: pytest.TempPathFactory,
                                          assets_dir: Path) -> None:
    """Property 41: Quality failures logged with details — one log line per failed expectation, carrying the
    suite, batch, expectation, column, severity, observed value and a sample of failing values drawn from the
    injected ones (with their row numbers and event_ids); passing expectations log nothing."""
    events = [event_row(i, "purchase", 10.0) for i in range(n)]
    bad_amounts = st_data.draw(st.dictionaries(st.integers(0, n - 1), st.sampled_from([-1.0, -250.5, 2e6, 9e9]),
                                               max_size=4), label="bad amounts")
    bad_types = st_data.draw(st.dictionaries(st.integers(0, n - 1), st.sampled_from(["click", "refund", "hack"]),
                                             max_size=3), label="unknown event types")
    for row, amount in bad_amounts.items():
        events[row]["amount"] = amount
    for row, event_type in bad_types.items():
        events[row]["event_type"] = event_type
    tmp = tmp_path_factory.mktemp("p41")
    write_staging(tmp / "warehouse.duckdb", events, [user_row(0)])
    report = run_on(tmp / "warehouse.duckdb", "staging", staging_suite(PARAMS), tmp / "quality", assets_dir)

    from eventpipe_common.logging import configure_logging

    stream = io.StringIO()
    configure_logging("quality", stream=stream)
    try:
        log_failures(report, sample_size=20)
    finally:
        configure_logging("quality")
    lines = [r for r in log_records(stream) if r["message"] == "quality expectation failed"]

    injected: dict[str, dict[int, Any]] = {"amount": bad_amounts, "event_type": bad_types}
    assert {line["column"] for line in lines} == {c for c, rows in injected.items() if rows}
    assert len(lines) == len(report.failures)
    for line in lines:
        assert line["component"] == "quality"
        assert line["suite"] == "staging" and line["asset"] == "staging.stg_events"
        assert line["run_id"] == report.run_id
        rows = injected[line["column"]]
        assert line["expectation"] == ("expect_column_values_to_be_between" if line["column"] == "amount"
                                       else "expect_column_values_to_be_in_set")
        assert line["level"] == "error" and line["severity"] == "critical"
        assert line["observed_value"]["unexpected_count"] == len(rows) == line["unexpected_count"]
        assert sorted(line["failing_rows"]) == sorted(rows)
        assert sorted(line["failing_keys"]) == sorted(f"e{r}" for r in rows)  # the event_ids of those rows
        assert sorted(map(str, line["failing_sample"])) == sorted(str(v) for v in rows.values())
