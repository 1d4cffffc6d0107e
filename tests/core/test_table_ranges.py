"""What the table cannot hold is refused at the door (issue 14, item 1), through the binding on both paths.

Timestamps must land in 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z once their offset is applied,
promoted integers must fit their column, promoted doubles must be finite, and strings must not hold a lone
UTF-16 surrogate escape. Each case is checked on process_batch (the consumer's path) and ingest_batch (ingest's),
which must agree; an accepted event must also come back out of Arrow as Python values (pyiceberg's conversion of
an out-of-range instant raised `OverflowError('date value out of range')` in the consumer's commit).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import eventpipe_core as ec
import pyarrow.parquet as pq
from hypothesis import example, given, settings
from hypothesis import strategies as st

MIN_US = -62_135_596_800 * 1_000_000
MAX_US = 253_402_300_800 * 1_000_000 - 1
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
SCHEMA = ec.Schema({"promote": [{"path": "properties.l", "column": "l", "type": "long"},
                                {"path": "properties.i", "column": "i", "type": "int"},
                                {"path": "properties.d", "column": "d", "type": "double"}]})
RANGES = settings(max_examples=150, deadline=None)


def both_paths(line: str, schema: ec.Schema | None = None) -> tuple[ec.BatchResult, list[tuple[str, str]]]:
    """The batch result of one NDJSON line, and its (field, rule) violations, checked equal on the ingest path."""
    data = (line + "\n").encode()
    batch = ec.process_batch(data, schema=schema)
    ingest = ec.ingest_batch(data, job_id="j", schema=schema, partition_key_field="event_id")
    found = [(v.field, v.rule) for r in batch.rejects for v in r.violations]
    assert [(v.field, v.rule) for r in ingest.rejects for v in r.violations] == found
    assert ingest.accepted == batch.records.num_rows
    return batch, found


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event_id": "e1", "event_type": "t", "timestamp": "2026-01-01T00:00:00Z"}
    base.update(fields)
    return base


def day_ordinal(year: int, month: int, day: int) -> int:
    """Proleptic Gregorian day ordinal (date.toordinal's scale), year 0 included (a leap year, 366 days)."""
    if year == 0:
        return dt.date(4, month, day).toordinal() - 4 * 365 - 1
    return dt.date(year, month, day).toordinal()


@st.composite
def edge_timestamps(draw: st.DrawFn) -> tuple[str, int]:
    """RFC 3339 text near (and away from) the range's ends, with any offset; and its UTC instant in micros."""
    year = draw(st.sampled_from([0, 1, 2, 9998, 9999]) | st.integers(0, 9999))
    month = draw(st.sampled_from([1, 12]) | st.integers(1, 12))
    day = draw(st.sampled_from([1, 28]) | st.integers(1, 28 if month == 2 else 30))
    if month == 12 and draw(st.booleans()):
        day = 31
    hour, minute, second = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    micros = draw(st.sampled_from([0, 999_999]) | st.integers(0, 999_999))
    offset = draw(st.sampled_from([0, 1, -1, 23 * 60 + 59, -(23 * 60 + 59)]) | st.integers(-1439, 1439))
    sign = "+" if offset >= 0 else "-"
    zone = "Z" if offset == 0 and draw(st.booleans()) else f"{sign}{abs(offset) // 60:02}:{abs(offset) % 60:02}"
    text = f"{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}{zone}"
    local = ((day_ordinal(year, month, day) - EPOCH_ORDINAL) * 86_400 + hour * 3600 + minute * 60 + second)
    return text, (local - offset * 60) * 1_000_000 + micros


@RANGES
@given(edge_timestamps())
@example(("0001-01-01T00:00:00Z", MIN_US))
@example(("9999-12-31T23:59:59.999999Z", MAX_US))
@example(("0001-01-01T00:30:00+01:00", MIN_US - 1_800_000_000))
@example(("9999-12-31T23:30:00-01:00", MAX_US + 1 + 1_800_000_000))
def test_timestamps_outside_the_tables_range_are_rejects(case: tuple[str, int]) -> None:
    text, utc_us = case
    batch, found = both_paths(json.dumps(event(timestamp=text)))
    if MIN_US <= utc_us <= MAX_US:
        assert found == []
        column = batch.records.column("event_ts")
        assert column.cast("int64").to_pylist() == [utc_us]
        (value,) = column.to_pylist()  # a Python datetime, as pyiceberg and most readers build one
        assert value == dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=utc_us)
    else:
        assert found == [("timestamp", "timestamp")]
        assert "0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z" in batch.rejects[0].reason
        assert batch.records.num_rows == 0


numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1]),
)


@RANGES
@given(long=numbers, int_=numbers)
def test_integers_must_fit_their_promoted_column(long: int, int_: int) -> None:
    batch, found = both_paths(json.dumps(event(properties={"l": long, "i": int_})), SCHEMA)
    expected = [(f"properties.{name}", "range") for name, value, bits in (("l", long, 64), ("i", int_, 32))
                if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)]
    assert found == expected
    if not expected:
        assert batch.records.column("l").to_pylist() == [long]
        assert batch.records.column("i").to_pylist() == [int_]
    else:
        assert "out of range for" in batch.rejects[0].reason


@RANGES
@given(st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(300, 400).map(lambda e: f"1e{e}"),
    st.integers(300, 400).map(lambda e: f"-9.9e{e}"),
    st.integers(300, 330).map(lambda n: "1" + "0" * n),
))
def test_promoted_doubles_must_be_finite(number: str) -> None:
    line = '{"event_id":"e","event_type":"t","timestamp":"2026-01-01T00:00:00Z","properties":{"d":' + number + "}}"
    batch, found = both_paths(line, SCHEMA)
    if float(number) in (float("inf"), float("-inf")):
        assert found == [("properties.d", "range")]
    else:
        assert found == []
        assert batch.records.column("d").to_pylist() == [float(number)]


def lone_surrogate(s: str) -> bool:
    """Whether a Python string (as json.dumps escapes it) keeps a surrogate that pairs with no other."""
    try:
        s.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        return True
    return False


any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=12)


@RANGES
@given(event_id=any_text.filter(bool), user_id=any_text, value=any_text, key=any_text.filter(lambda k: k != "k"))
@example(event_id="\ud800", user_id="", value="", key="")
@example(event_id="e\x00", user_id="\ud83d\ude00", value="\x00", key="\udfff")
def test_lone_surrogates_are_refused_nul_is_kept(event_id: str, user_id: str, value: str, key: str) -> None:
    line = json.dumps(event(event_id=event_id, user_id=user_id, properties={"k": [value], key: 1}))
    batch, found = both_paths(line)
    expected = [(field, "unicode") for field, bad in (("event_id", lone_surrogate(event_id)),
                                                     ("user_id", lone_surrogate(user_id)),
                                                     ("properties", lone_surrogate(value + key))) if bad]
    assert found == expected
    if expected:
        assert "lone UTF-16 surrogate" in batch.rejects[0].reason
        return
    paired = event_id.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    assert batch.records.column("event_id").to_pylist() == [paired]
    (properties,) = batch.records.column("properties").to_pylist()
    assert json.loads(properties)["k"] == [value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")]


def test_nul_survives_parquet(tmp_path: Any) -> None:
    """NUL is a Unicode character like any other: the table holds it (Parquet strings are byte arrays)."""
    batch, found = both_paths(json.dumps(event(event_id="a\x00b", properties={"s": "\x00"})))
    assert found == []
    pq.write_table(batch.records, tmp_path / "nul.parquet")
    assert pq.read_table(tmp_path / "nul.parquet").column("event_id").to_pylist() == ["a\x00b"]
