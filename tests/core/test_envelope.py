"""The fast envelope reader (rust/core/src/envelope.rs) against the serde_json reference it replaced.

The fast reader takes only the text serde_json would take and gives up on the rest, which then goes through
serde_json: so for any text, `check_event` and `check_event_reference` must give the same event and the same
violations, messages included. The lines here are built to be hostile to a hand-written JSON reader.
"""

from __future__ import annotations

import json
from typing import Any

import eventpipe_core as ec
from eventpipe_core import _native
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.core_strategies import AMOUNT_SCHEMA, events

SCHEMAS = [
    None,
    ec.Schema(AMOUNT_SCHEMA),
    ec.Schema(
        {
            "fields": [
                {"path": "properties.currency", "type": "string", "enum": ["EUR", "USD"]},
                {"path": "properties.n.k", "type": "number", "max": 10},
                {"path": "user_id", "pattern": "^u_", "max_length": 8},
            ],
            "promote": [
                {"path": "properties.amount", "column": "amount", "type": "double"},
                {"path": "properties.count", "column": "count", "type": "long"},
                {"path": "properties.é", "column": "e", "type": "string"},
            ],
        }
    ),
]

# Pieces a hand-written reader could get wrong: escapes, surrogates, control characters, numbers at the edges of
# the grammar, literals cut short, nesting, duplicate and escaped keys, structure out of place.
TOKENS = [
    "{", "}", "[", "]", '"', ",", ":", " ", "\t", "\r\n", "\\", "\\u", "\\ud800", "\\udc00", "\\ud83d\\ude00",
    "\\u00e9", "\\x", "\\/", "\x00", "\x1f", "\x7f", "é", "日本", "-", "-0", "01", "1.", ".5", "1e", "1e+", "1E-7",
    "1e999", "99999999999999999999999", "tru", "true", "nul", "null", "false", '"event_id":', '"\\u0065vent_id":',
    '"properties":{', '"properties":', '"_job_id":', '"schema_version":', '"timestamp":', '"amount":', '"é":',
    "[[[[[[[[", "]]]]]]]]", "{}", "[]", '""',
]


def _spaced(value: Any, draw: st.DrawFn) -> str:
    """JSON text of `value` with whitespace drawn between tokens (and keys escaped or not)."""
    gap = st.sampled_from(["", "", "", " ", "\n", "\t ", "\r\n"])
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            key_text = json.dumps(key, ensure_ascii=draw(st.booleans()))
            parts.append(f"{draw(gap)}{key_text}{draw(gap)}:{draw(gap)}{_spaced(item, draw)}{draw(gap)}")
        return "{" + ",".join(parts) + "}"
    if isinstance(value, list):
        return "[" + ",".join(f"{draw(gap)}{_spaced(v, draw)}{draw(gap)}" for v in value) + "]"
    return json.dumps(value, ensure_ascii=draw(st.booleans()))


@st.composite
def hostile_lines(draw: st.DrawFn) -> str:
    """An event line, spaced out, then maybe mutated: tokens inserted, bytes dropped, cut short, a member repeated."""
    event = draw(events())
    props = event.setdefault("properties", {})
    if isinstance(props, dict) and draw(st.booleans()):
        props["amount"] = draw(st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=3), st.none()))
        props["n"] = {"k": draw(st.integers(min_value=-5, max_value=20))}
        props["é"] = draw(st.text(max_size=5))
    text = _spaced(event, draw)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        action = draw(st.sampled_from(["insert", "insert", "delete", "cut", "repeat", "deep"]))
        if action == "insert":
            text = text[:at] + draw(st.sampled_from(TOKENS)) + text[at:]
        elif action == "delete" and at < len(text):
            text = text[:at] + text[at + 1 :]
        elif action == "cut":
            text = text[:at]
        elif action == "repeat":
            member = draw(st.sampled_from(['"event_id":"again",', '"user_id":null,', '"amount":1,', '"x":1,']))
            text = text[:1] + member + text[1:] if text.startswith("{") else text
        elif action == "deep":
            depth = draw(st.integers(min_value=1, max_value=200))
            text = text[:1] + '"deep":' + "[" * depth + "]" * depth + "," + text[1:]
    return text


@settings(max_examples=1500, deadline=None)
@given(hostile_lines(), st.sampled_from(range(len(SCHEMAS))))
def test_fast_reader_agrees_with_serde(line: str, schema_index: int) -> None:
    """Property 8: Invalid data returns error details: the fast envelope reader gives, for any line (valid, spaced,
    escaped, duplicated, deeply nested, cut short or broken), the same event and the very same violations and
    messages as the serde_json reader it replaced."""
    fast, reference = _native._check_event_paths(line, SCHEMAS[schema_index])
    assert fast == reference, line


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup_agrees(tokens: list[str]) -> None:
    """Property 8: Invalid data returns error details: text made only of JSON's pieces, inside an object or not,
    reads the same on both paths."""
    soup = "".join(tokens)
    for line in (soup, "{" + soup, '{"event_id":' + soup + "}"):
        fast, reference = _native._check_event_paths(line, SCHEMAS[2])
        assert fast == reference, line
