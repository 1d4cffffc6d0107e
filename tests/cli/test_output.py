"""`-o json` and `-o csv` of `query` and `status` (eventpipe_cli.output): what a script reads back is what the
query returned, for any column names and values DuckDB can hand over (hypothesis draws them)."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from typing import Any

from eventpipe_cli.output import flatten, query_csv, query_json, status_csv, status_json
from hypothesis import given, settings
from hypothesis import strategies as st

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(), st.datetimes(timezones=st.just(dt.UTC)), st.dates(),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)
NAMES = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=5, unique=True)


@st.composite
def results(draw: st.DrawFn) -> tuple[list[str], list[tuple[Any, ...]]]:
    columns = draw(NAMES)
    rows = draw(st.lists(st.tuples(*(SCALARS for _ in columns)), max_size=8))
    return columns, rows


def expected(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


@settings(max_examples=300)
@given(results(), st.booleans())
def test_query_json_reads_back_every_value(result: tuple[list[str], list[tuple[Any, ...]]], truncated: bool) -> None:
    columns, rows = result
    answer = json.loads(query_json(columns, rows, truncated))
    assert answer["version"] == 1 and answer["columns"] == columns and answer["truncated"] is truncated
    assert answer["rows"] == [{c: expected(v) for c, v in zip(columns, row, strict=True)} for row in rows]


@settings(max_examples=300)
@given(results())
def test_query_csv_reads_back_every_value(result: tuple[list[str], list[tuple[Any, ...]]]) -> None:
    columns, rows = result
    parsed = list(csv.reader(io.StringIO(query_csv(columns, rows), newline="")))
    assert parsed[0] == columns
    assert parsed[1:] == [["" if v is None else str(expected(v)) for v in row] for row in rows]


REPORTS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(alphabet="abc_", min_size=1, max_size=4), inner,
                                                 max_size=3)), max_leaves=12)


@settings(max_examples=300)
@given(st.dictionaries(st.text(alphabet="xyz", min_size=1, max_size=3), REPORTS, max_size=4))
def test_status_csv_holds_each_leaf_of_the_json_once(report: dict[str, Any]) -> None:
    rows = list(csv.reader(io.StringIO(status_csv(report), newline="")))
    assert rows[0] == ["key", "value"]
    keys = [key for key, _ in rows[1:]]
    assert len(keys) == len(set(keys)) and keys[0] == "version"
    assert dict(rows[1:]) == {k: "" if v is None else (json.dumps(v) if isinstance(v, list | dict)
                                                        else str(expected(v)))
                              for k, v in flatten({"version": 1, **report})}
    assert json.loads(status_json(report))["version"] == 1
