"""Transformation through the binding (Properties 6 and 11): timestamps, derived columns, promoted columns."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import eventpipe_core as ec
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.core_strategies import events, instants, ndjson, rfc3339, utc_micros

PROMOTING = ec.Schema(
    {
        "promote": [
            {"path": "properties.amount", "column": "amount", "type": "double"},
            {"path": "properties.n", "column": "n", "type": "long"},
            {"path": "properties.k", "column": "k", "type": "int"},
            {"path": "properties.currency", "column": "currency", "type": "string"},
            {"path": "properties.ok", "column": "ok", "type": "boolean"},
        ]
    }
)


@st.composite
def promoting_events(draw: st.DrawFn) -> dict[str, Any]:
    e = draw(events(with_properties=False))
    props: dict[str, Any] = {}
    if draw(st.booleans()):
        props["amount"] = draw(st.floats(allow_nan=False, allow_infinity=False))
    if draw(st.booleans()):
        props["n"] = draw(st.integers(-(2**63), 2**63 - 1))
    if draw(st.booleans()):
        props["k"] = draw(st.integers(-(2**31), 2**31 - 1))
    if draw(st.booleans()):
        props["currency"] = draw(st.text(max_size=5))
    if draw(st.booleans()):
        props["ok"] = draw(st.booleans())
    if draw(st.booleans()):
        props["big"] = draw(st.integers(min_value=2**53 + 1, max_value=2**70))
    if props or draw(st.booleans()):
        e["properties"] = props
    return e


def expected_row(e: dict[str, Any]) -> dict[str, Any]:
    t = dt.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
    utc = t.astimezone(dt.UTC)
    props = e.get("properties")
    p = props or {}
    return {
        "event_id": e["event_id"],
        "event_type": e["event_type"],
        "user_id": e.get("user_id"),
        "session_id": e.get("session_id"),
        "event_ts": utc_micros(t),
        "event_date": utc.date(),
        "event_hour": utc.hour,
        "properties": props,
        "schema_version": e.get("schema_version", 1),
        "amount": p.get("amount"),
        "n": p.get("n"),
        "k": p.get("k"),
        "currency": p.get("currency"),
        "ok": p.get("ok"),
        "job_id": None,
    }


@st.composite
def batches_with_resends(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Events where some reuse an earlier event's id (a re-send, possibly with other fields), so dedupe meets
    duplicates in any position, not only on the fixed examples of test_details.py."""
    items: list[dict[str, Any]] = draw(st.lists(promoting_events(), max_size=10))
    for n in range(1, len(items)):
        if draw(st.booleans()):
            items[n]["event_id"] = items[draw(st.integers(0, n - 1))]["event_id"]
    return items


def first_occurrences(items: list[dict[str, Any]]) -> list[int]:
    """The reference dedupe: the index of the first event of each event_id, in input order."""
    seen: set[str] = set()
    keep = []
    for n, e in enumerate(items):
        if e["event_id"] not in seen:
            seen.add(e["event_id"])
            keep.append(n)
    return keep


@settings(max_examples=100, deadline=None)
@given(batches_with_resends())
def test_transformations_applied_to_all_events(items: list[dict[str, Any]]) -> None:
    """Property 6: Transformations applied to all events: every event gets event_ts in UTC microseconds,
    event_date and event_hour of the UTC instant, properties as JSON text (big integers exact), the default
    schema_version, typed promoted columns; transform_batch transforms every event, and process_batch and
    deduplicate keep exactly the first event of each event_id (re-sends drawn in any position), row for row
    equal to transform_batch's row of that event."""
    rows = ec.transform_batch(items, PROMOTING)
    assert len(rows) == len(items)
    for row, e in zip(rows, items, strict=True):
        want = expected_row(e)
        got = dict(row, properties=None if row["properties"] is None else json.loads(row["properties"]))
        assert got == want
    keep = first_occurrences(items)
    assert ec.deduplicate(items) == [items[n] for n in keep]
    result = ec.process_batch(ndjson(items), schema=PROMOTING)
    assert result.duplicates == len(items) - len(keep)
    as_rows = result.records.to_pylist()
    assert len(as_rows) == len(keep)
    for n, arrow_row in zip(keep, as_rows, strict=True):
        row = rows[n]
        assert arrow_row["event_ts"] == dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            microseconds=row["event_ts"]
        )
        for key in ("event_id", "event_type", "user_id", "session_id", "event_date", "event_hour", "properties",
                    "schema_version", "amount", "n", "k", "currency", "ok", "job_id"):
            assert arrow_row[key] == row[key], key


@settings(max_examples=40, deadline=None)
@given(st.lists(events(), max_size=6, unique_by=lambda e: e["event_id"]))
def test_transformation_interface(items: list[dict[str, Any]]) -> None:
    """Property 11: Python-Rust transformation interface works: transform_batch takes a sequence of mappings and
    returns plain dicts with the documented keys and Python types; a batch with an invalid event raises
    ValidationFailed naming it."""
    rows = ec.transform_batch(items)
    keys = ["event_id", "event_type", "user_id", "session_id", "event_ts", "event_date", "event_hour",
            "properties", "schema_version", "job_id"]
    for row in rows:
        assert list(row) == keys
        assert isinstance(row["event_ts"], int)
        assert type(row["event_date"]) is dt.date
        assert 0 <= row["event_hour"] <= 23
        assert row["properties"] is None or isinstance(json.loads(row["properties"]), dict)
    bad = [*items, {"event_id": "zz", "event_type": "t", "timestamp": "2026-02-30T00:00:00Z"}]
    try:
        ec.transform_batch(bad)
    except ec.ValidationFailed as err:
        assert [(v.index, v.field, v.rule) for v in err.errors()] == [(len(items), "timestamp", "timestamp")]
    else:
        raise AssertionError("an impossible date must fail the transformation")


@settings(max_examples=60, deadline=None)
@given(instants(), st.sampled_from([0, 1, 3, 6, 9]))
def test_any_offset_and_fraction_digits(t: dt.datetime, digits: int) -> None:
    e = {"event_id": "a", "event_type": "t", "timestamp": rfc3339(t, digits)}
    [row] = ec.transform_batch([e])
    truncated = t.replace(microsecond=int(f"{t.microsecond:06d}"[:digits].ljust(6, "0")) if digits else 0)
    assert row["event_ts"] == utc_micros(truncated)


def test_promotion_type_mismatch_is_a_violation() -> None:
    e = {"event_id": "a", "event_type": "t", "timestamp": "2026-01-01T00:00:00Z", "properties": {"k": 2**40}}
    [v] = ec.validate_schema([e], PROMOTING)
    # an integer past the int column's 32 bits: a "range" violation (issue 14: the table cannot hold it)
    assert (v.field, v.rule, v.value) == ("properties.k", "range", 2**40)
    [v] = ec.validate_schema([{**e, "properties": {"k": "x"}}], PROMOTING)
    assert (v.field, v.rule) == ("properties.k", "type")


def test_records_schema_and_types() -> None:
    e = {"event_id": "a", "event_type": "t", "timestamp": "2026-01-01T00:00:00Z"}
    table = ec.process_batch(ndjson([e]), schema=PROMOTING, include_raw=True).records
    assert table.schema.names == ["event_id", "event_type", "user_id", "session_id", "event_ts", "event_date",
                                  "event_hour", "properties", "schema_version", "amount", "n", "k", "currency",
                                  "ok", "job_id", "source_line", "raw"]
    assert table.schema.field("event_ts").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("event_date").type == pa.date32()
    assert table.schema.field("event_hour").type == pa.int32()
    assert table.schema.field("schema_version").type == pa.int32()
    assert table.schema.field("source_line").type == pa.int64()
    assert table.schema.field("amount").type == pa.float64()
    assert table.schema.field("k").type == pa.int32()
    assert table.schema.field("ok").type == pa.bool_()
