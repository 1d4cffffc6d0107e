"""Validation through the binding: every violation of every event, with its details (Properties 5, 8, 10)."""

from __future__ import annotations

import json
import types
from typing import Any

import eventpipe_core as ec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.core_strategies import EVENT_TYPES, events, ndjson

SCHEMA = ec.Schema(
    {
        "event_types": EVENT_TYPES,
        "fields": [
            {"path": "properties.amount", "type": "number", "min": 0, "max": 1e6},
            {"path": "properties.currency", "type": "string", "enum": ["EUR", "USD"]},
            {"path": "user_id", "type": "string", "max_length": 12},
            {"path": "session_id", "type": "string", "pattern": "^s"},
        ],
    }
)

# Each breakage: (name, how to break an event in place, the (field, rule) pair it must produce).
BREAKAGES: list[tuple[str, Any, tuple[str, str]]] = [
    ("no_id", lambda e: e.pop("event_id"), ("event_id", "required")),
    ("id_type", lambda e: e.__setitem__("event_id", 5), ("event_id", "type")),
    ("bad_type", lambda e: e.__setitem__("event_type", "bogus"), ("event_type", "event_type")),
    ("naive_ts", lambda e: e.__setitem__("timestamp", "2026-01-01T00:00:00"), ("timestamp", "timestamp")),
    ("neg_amount", lambda e: e["properties"].__setitem__("amount", -1), ("properties.amount", "min")),
    ("big_amount", lambda e: e["properties"].__setitem__("amount", 2e6), ("properties.amount", "max")),
    ("str_amount", lambda e: e["properties"].__setitem__("amount", "1"), ("properties.amount", "type")),
    ("currency", lambda e: e["properties"].__setitem__("currency", "GBP"), ("properties.currency", "enum")),
    ("long_user", lambda e: e.__setitem__("user_id", "u" * 20), ("user_id", "max_length")),
    ("session", lambda e: e.__setitem__("session_id", "x1"), ("session_id", "pattern")),
    ("version", lambda e: e.__setitem__("schema_version", "one"), ("schema_version", "type")),
    ("props", lambda e: e.__setitem__("properties", [1]), ("properties", "type")),
]
EXCLUSIVE = [{"no_id", "id_type"}, {"neg_amount", "big_amount", "str_amount", "props"}, {"currency", "props"}]


@st.composite
def conforming(draw: st.DrawFn) -> dict[str, Any]:
    e = draw(events(with_properties=False))
    e["user_id"] = "u" + str(draw(st.integers(0, 999)))
    e["session_id"] = "s" + str(draw(st.integers(0, 999)))
    e["properties"] = {"amount": draw(st.floats(0, 1e6)), "currency": draw(st.sampled_from(["EUR", "USD"]))}
    return e


@st.composite
def broken(draw: st.DrawFn) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    e = draw(conforming())
    chosen: set[str] = set()
    for name in draw(st.permutations([b[0] for b in BREAKAGES])):
        if draw(st.booleans()) and not any(name in group and chosen & group for group in EXCLUSIVE):
            chosen.add(name)
    for name, breaker, _ in BREAKAGES:
        if name in chosen:
            breaker(e)
    return e, {pair for name, _, pair in BREAKAGES if name in chosen}


@settings(max_examples=80, deadline=None)
@given(st.lists(broken(), min_size=1, max_size=6))
def test_all_violations_detected(cases: list[tuple[dict[str, Any], set[tuple[str, str]]]]) -> None:
    """Property 5: Schema validation detects all violations: for events broken in any combination of ways,
    validate_schema reports exactly the broken (field, rule) pairs of every event, not only the first."""
    violations = ec.validate_schema([c[0] for c in cases], SCHEMA)
    for index, (_, expected) in enumerate(cases):
        found = {(v.field, v.rule) for v in violations if v.index == index}
        assert found == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(broken(), st.sampled_from(["event", "not_json", "not_object"])), min_size=1, max_size=8))
def test_invalid_data_error_details(cases: list[tuple[tuple[dict[str, Any], set[tuple[str, str]]], str]]) -> None:
    """Property 8: Invalid data returns error details: in process_batch every invalid line becomes a reject with
    its 1-based line, its raw text, a reason naming each broken field, and violations carrying the offending
    value; valid lines never become rejects."""
    lines: list[str] = []
    expected: dict[int, set[tuple[str, str]]] = {}
    for i, ((event, broken_pairs), kind) in enumerate(cases):
        event = dict(event, event_id=f"id-{i}") if "event_id" in event and isinstance(event["event_id"], str) else event
        if kind == "not_json":
            lines.append('{"event_id": "x", oops')
            expected[i + 1] = {("", "json")}
        elif kind == "not_object":
            lines.append("[1, 2, 3]")
            expected[i + 1] = {("", "json")}
        else:
            lines.append(json.dumps(event))
            if broken_pairs:
                expected[i + 1] = broken_pairs
    result = ec.process_batch("\n".join(lines).encode(), schema=SCHEMA)
    assert {r.line: {(v.field, v.rule) for v in r.violations} for r in result.rejects} == expected
    for r in result.rejects:
        assert r.raw == lines[r.line - 1]
        for v in r.violations:
            assert v.index == r.line - 1
            assert v.message and v.message in r.reason
            if v.field and v.rule != "required":
                assert v.field.split(".")[-1] in v.message
                event = json.loads(r.raw)
                path = v.field.split(".")
                value: Any = event
                for part in path:
                    value = value[part]
                assert v.value == value
    assert result.records.num_rows == len(lines) - len(expected)


@settings(max_examples=40, deadline=None)
@given(st.lists(broken(), max_size=5))
def test_validation_interface(cases: list[tuple[dict[str, Any], set[tuple[str, str]]]]) -> None:
    """Property 10: Python-Rust validation interface works: dicts and other Mappings are accepted, Violation
    objects carry index/field/rule/message/value and to_dict(), and validate_or_raise raises ValidationFailed
    carrying the same violations (errors(), error_count(), json())."""
    items = [c[0] for c in cases]
    as_mappings = [types.MappingProxyType(e) for e in items]
    violations = ec.validate_schema(items, SCHEMA)
    assert [v.to_dict() for v in ec.validate_schema(as_mappings, SCHEMA)] == [v.to_dict() for v in violations]
    for v in violations:
        assert set(v.to_dict()) == {"index", "field", "rule", "message", "value"}
        assert isinstance(v, ec.Violation)
    if violations:
        with pytest.raises(ec.ValidationFailed) as info:
            ec.validate_or_raise(items, SCHEMA)
        assert info.value.error_count() == len(violations)
        assert [v.to_dict() for v in info.value.errors()] == [v.to_dict() for v in violations]
        assert len(json.loads(info.value.json())) == len(violations)
    else:
        assert ec.validate_or_raise(items, SCHEMA) is None


def test_envelope_schema_is_the_default() -> None:
    good = {"event_id": "a", "event_type": "anything", "timestamp": "2026-01-01T00:00:00Z"}
    assert ec.validate_schema([good]) == []
    assert ec.validate_schema([good], ec.Schema.envelope()) == []
    assert [(v.field, v.rule) for v in ec.validate_schema([{}])] == [
        ("event_id", "required"),
        ("event_type", "required"),
        ("timestamp", "required"),
    ]


def test_rules_scoped_by_event_type() -> None:
    schema = ec.Schema(
        {"fields": [{"path": "properties.amount", "type": "number", "required": True, "event_types": ["purchase"]}]}
    )
    base = {"event_id": "a", "timestamp": "2026-01-01T00:00:00Z"}
    assert ec.validate_schema([dict(base, event_type="page_view")], schema) == []
    [v] = ec.validate_schema([dict(base, event_type="purchase")], schema)
    assert (v.field, v.rule, v.value) == ("properties.amount", "required", None)


def test_schema_accessors() -> None:
    schema = ec.Schema(
        json.dumps({"event_types": ["a"], "promote": [{"path": "properties.n", "column": "n", "type": "long"}]})
    )
    assert schema.event_types == ["a"]
    assert schema.promoted == [("n", "long")]
    assert json.loads(schema.to_json())["event_types"] == ["a"]
    assert ec.Schema.envelope().event_types is None


def test_reserved_job_id_is_not_a_violation() -> None:
    e = {"event_id": "a", "event_type": "t", "timestamp": "2026-01-01T00:00:00Z", "_job_id": "j-1"}
    assert ec.validate_schema([e]) == []
    [v] = ec.validate_schema([dict(e, _job_id=3)])
    assert (v.field, v.rule) == ("_job_id", "type")


def test_ndjson_helper_round_trip() -> None:
    e = {"event_id": "a", "event_type": "t", "timestamp": "2026-01-01T00:00:00Z"}
    assert ec.parse_json(ndjson([e, e])) == [e, e]
