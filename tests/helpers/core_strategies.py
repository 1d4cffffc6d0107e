"""Hypothesis strategies and builders for the core's tests: valid events, and events broken on purpose."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import strategies as st

EVENT_TYPES = ["page_view", "click", "purchase", "signup", "logout"]
# The schema of the thread and stream tests: one checked number, promoted to its own column.
AMOUNT_SCHEMA: dict[str, Any] = {
    "event_types": EVENT_TYPES,
    "fields": [{"path": "properties.amount", "type": "number", "min": 0, "max": 1e6}],
    "promote": [{"path": "properties.amount", "column": "amount", "type": "double"}],
}

ids = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59)


@st.composite
def instants(draw: st.DrawFn) -> dt.datetime:
    """An aware datetime with a random offset (microsecond precision)."""
    naive = draw(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2100, 12, 31)))
    minutes = draw(offsets)
    return naive.replace(tzinfo=dt.timezone(dt.timedelta(minutes=minutes)))


def rfc3339(t: dt.datetime, fraction_digits: int = 6) -> str:
    """RFC 3339 text of an aware datetime: `Z` for UTC, else ±hh:mm; 0 to 9 fractional digits."""
    off = t.utcoffset()
    assert off is not None
    total = int(off.total_seconds()) // 60
    if total == 0:
        zone = "Z"
    else:
        sign = "+" if total > 0 else "-"
        zone = f"{sign}{abs(total) // 60:02d}:{abs(total) % 60:02d}"
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction_digits:
        frac = f"{t.microsecond:06d}000"[:fraction_digits]
        base += "." + frac
    return base + zone


def utc_micros(t: dt.datetime) -> int:
    """Exact UTC microseconds of an aware datetime (no float rounding)."""
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@st.composite
def events(draw: st.DrawFn, *, with_properties: bool = True) -> dict[str, Any]:
    """A valid event of the envelope contract."""
    t = draw(instants())
    event: dict[str, Any] = {
        "event_id": draw(ids),
        "event_type": draw(st.sampled_from(EVENT_TYPES)),
        "timestamp": rfc3339(t, draw(st.sampled_from([0, 3, 6]))),
    }
    if draw(st.booleans()):
        event["user_id"] = draw(st.text(max_size=12))
    if draw(st.booleans()):
        event["session_id"] = draw(st.text(max_size=12))
    if with_properties and draw(st.booleans()):
        event["properties"] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4))
    if draw(st.booleans()):
        event["schema_version"] = draw(st.integers(min_value=1, max_value=9))
    return event


def ndjson(items: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in items).encode()
