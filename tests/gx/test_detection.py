"""Properties 27, 28, 29: the staging suite finds every injected null, type mismatch and out-of-range value,
and reports no clean row (real GX runs on pandas batches read from real DuckDB files)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from eventpipe_quality.suites import SuiteParams, staging_suite
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers.gx_support import NOW, gx_examples, outcomes_for, run_on
from tests.helpers.warehouse_data import EVENT_TYPES, STG_EVENTS_DDL, event_row, user_row, write_staging

PARAMS = SuiteParams(now=NOW, event_types=EVENT_TYPES)
KEY_COLUMNS = ("event_id", "event_type", "event_ts", "event_date", "ingested_at")
EXAMPLES = gx_examples(10)


@st.composite
def clean_staging(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Clean events (allowed types, amounts in range, timestamps in the past) and users."""
    n = draw(st.integers(min_value=5, max_value=30))
    events = []
    for i in range(n):
        event_type = draw(st.sampled_from(EVENT_TYPES))
        amount = draw(st.floats(min_value=0, max_value=1_000_000, allow_nan=False))
        events.append(event_row(i, event_type, amount))
    users = [user_row(u) for u in range(draw(st.integers(min_value=1, max_value=5)))]
    return events, users


def assert_only(report: Any, failing: set[tuple[str, str, str | None]]) -> None:
    """No expectation other than those in `failing` (asset, expectation, column) failed."""
    unexpected = {(o.asset, o.expectation, o.column) for o in report.failures} - failing
    assert not unexpected, f"clean data reported: {unexpected}"


@given(data=clean_staging(), st_data=st.data())
@EXAMPLES
def test_nulls_in_keys_are_detected(data: tuple[list[dict[str, Any]], list[dict[str, Any]]], st_data: st.DataObject,
                                    tmp_path_factory: pytest.TempPathFactory, assets_dir: Path) -> None:
    """Property 27: Null checks detect missing values — every row where a key column was nulled is reported
    by that column's not-null expectation, and no other row or expectation is."""
    events, users = data
    injected = st_data.draw(st.sets(st.tuples(st.sampled_from(KEY_COLUMNS), st.integers(0, len(events) - 1)),
                                    max_size=8), label="nulls")
    user_nulls = st_data.draw(st.sets(st.integers(0, len(users) - 1), max_size=2), label="user_id nulls")
    for column, row in injected:
        events[row][column] = None
    for row in user_nulls:
        users[row]["user_id"] = None
    tmp = tmp_path_factory.mktemp("p27")
    write_staging(tmp / "warehouse.duckdb", events, users)

    report = run_on(tmp / "warehouse.duckdb", "staging", staging_suite(PARAMS), tmp / "quality", assets_dir)

    not_null = outcomes_for(report, "staging.stg_events", "expect_column_values_to_not_be_null")
    for column in KEY_COLUMNS:
        expected_rows = sorted(row for c, row in injected if c == column)
        assert sorted(not_null[column].unexpected_rows) == expected_rows, column
        assert not_null[column].success == (not expected_rows)
        assert not_null[column].unexpected_count == len(expected_rows)
    user_outcome = outcomes_for(report, "staging.stg_users", "expect_column_values_to_not_be_null")["user_id"]
    assert sorted(user_outcome.unexpected_rows) == sorted(user_nulls)
    failing = {("staging.stg_events", "expect_column_values_to_not_be_null", c) for c, _ in injected}
    failing |= {("staging.stg_users", "expect_column_values_to_not_be_null", "user_id")} if user_nulls else set()
    assert_only(report, failing)
    assert report.success == (not injected and not user_nulls)


# A type that a column must not have, and how its values are rewritten to fit that type.
MISMATCH: dict[str, tuple[str, Any]] = {
    "VARCHAR": ("BIGINT", lambda i, v: None if v is None else i),
    "TIMESTAMPTZ": ("VARCHAR", lambda i, v: None if v is None else v.isoformat()),
    "DATE": ("VARCHAR", lambda i, v: None if v is None else v.isoformat()),
    "INTEGER": ("DOUBLE", lambda i, v: None if v is None else v + 0.5),
    "DOUBLE": ("VARCHAR", lambda i, v: None if v is None else repr(v)),
}


@given(data=clean_staging(), columns=st.sets(st.sampled_from(sorted(STG_EVENTS_DDL)), max_size=5))
@EXAMPLES
def test_type_mismatches_are_detected(data: tuple[list[dict[str, Any]], list[dict[str, Any]]], columns: set[str],
                                      tmp_path_factory: pytest.TempPathFactory, assets_dir: Path) -> None:
    """Property 28: Type checks detect mismatches — every column whose warehouse type was changed (text in a
    numeric column, a float where an integer belongs, a timestamp stored as text) fails its type expectation,
    observed type named, and every column of the right type passes. In a typed warehouse a type belongs to a
    column, so the unit of injection and detection is the column."""
    events, users = data
    ddl = dict(STG_EVENTS_DDL)
    for column in columns:
        new_type, convert = MISMATCH[ddl[column]]
        ddl[column] = new_type
        for i, row in enumerate(events):
            row[column] = convert(i, row[column])
    tmp = tmp_path_factory.mktemp("p28")
    write_staging(tmp / "warehouse.duckdb", events, users, events_ddl=ddl)

    report = run_on(tmp / "warehouse.duckdb", "staging", staging_suite(PARAMS), tmp / "quality", assets_dir)

    types = outcomes_for(report, "staging.stg_events", "expect_column_values_to_be_of_type")
    assert set(types) == set(STG_EVENTS_DDL)
    assert {c for c, o in types.items() if not o.success} == columns
    for column in columns:
        assert types[column].observed_value != types[column].kwargs["type_"]
        assert types[column].severity == "critical"
    # Other expectations may stumble on a retyped column, never on a clean one.
    clean_failures = {(o.asset, o.column) for o in report.failures if o.column not in columns}
    assert not clean_failures
    assert report.success == (not columns)


@given(data=clean_staging(), st_data=st.data())
@EXAMPLES
def test_out_of_range_values_are_detected(data: tuple[list[dict[str, Any]], list[dict[str, Any]]],
                                          st_data: st.DataObject, tmp_path_factory: pytest.TempPathFactory,
                                          assets_dir: Path) -> None:
    """Property 29: Range checks detect out-of-bounds values — every amount outside [0, 1e6] and every event_ts
    later than now plus the allowed skew is reported at its row, and no in-range row is."""
    events, users = data
    n = len(events)
    purchases = [i for i, e in enumerate(events) if e["event_type"] == "purchase"]
    bad_amount_rows = st_data.draw(st.sets(st.sampled_from(purchases), max_size=4) if purchases else st.just(set()),
                                   label="amount rows")
    for row in bad_amount_rows:
        events[row]["amount"] = st_data.draw(st.one_of(
            st.floats(min_value=-1e9, max_value=-0.001), st.floats(min_value=1_000_000.001, max_value=1e12)))
    future_rows = st_data.draw(st.sets(st.integers(0, n - 1), max_size=4), label="future rows")
    for row in future_rows:
        ahead = dt.timedelta(seconds=st_data.draw(st.integers(min_value=1, max_value=10**7)))
        events[row]["event_ts"] = NOW + PARAMS.max_clock_skew + ahead
    # Boundaries are in range: exactly the skew ahead, exactly 0 and 1e6.
    edge_rows = [i for i in range(n) if i not in future_rows][:1]
    for row in edge_rows:
        events[row]["event_ts"] = NOW + PARAMS.max_clock_skew
    tmp = tmp_path_factory.mktemp("p29")
    write_staging(tmp / "warehouse.duckdb", events, users)

    report = run_on(tmp / "warehouse.duckdb", "staging", staging_suite(PARAMS), tmp / "quality", assets_dir)

    between = outcomes_for(report, "staging.stg_events", "expect_column_values_to_be_between")
    assert sorted(between["amount"].unexpected_rows) == sorted(bad_amount_rows)
    assert sorted(between["event_ts"].unexpected_rows) == sorted(future_rows)
    assert len(between["amount"].failing_sample) == len(bad_amount_rows)
    failing = set()
    if bad_amount_rows:
        failing.add(("staging.stg_events", "expect_column_values_to_be_between", "amount"))
    if future_rows:
        failing.add(("staging.stg_events", "expect_column_values_to_be_between", "event_ts"))
    assert_only(report, failing)
    # A future timestamp is a warning (client clocks drift); an impossible amount stops the pipeline.
    assert report.success == (not bad_amount_rows)
