"""The sample-traffic generator: deterministic, with exactly the share of re-sends and invalid lines asked for."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest
from eventpipe_cli.generator import EVENT_TYPES, INVALID_KINDS, GeneratorConfig, generate
from hypothesis import given, settings
from hypothesis import strategies as st

START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _lines(config: GeneratorConfig, count: int) -> list:  # type: ignore[type-arg]
    return list(generate(config, count))


def test_same_seed_same_lines_different_seed_different_lines() -> None:
    config = GeneratorConfig(seed=7, start=START, duplicate_share=0.1, invalid_share=0.1)
    assert _lines(config, 300) == _lines(config, 300)
    other = GeneratorConfig(seed=8, start=START, duplicate_share=0.1, invalid_share=0.1)
    assert [line.text for line in _lines(config, 300)] != [line.text for line in _lines(other, 300)]


def test_clean_traffic_covers_every_event_type_and_starts_users_with_signup() -> None:
    lines = _lines(GeneratorConfig(seed=1, start=START, users=20), 2000)
    assert all(line.kind == "valid" for line in lines)
    events = [json.loads(line.text) for line in lines]
    assert {e["event_type"] for e in events} == set(EVENT_TYPES)
    first_seen: dict[str, str] = {}
    for event in events:
        first_seen.setdefault(event["user_id"], event["event_type"])
    assert set(first_seen.values()) == {"signup"}
    assert len({e["event_id"] for e in events}) == len(events)


def test_identify_changes_traits_over_time() -> None:
    events = [json.loads(line.text) for line in _lines(GeneratorConfig(seed=3, start=START, users=5), 3000)]
    traits: dict[str, set[tuple[str, str]]] = {}
    for event in events:
        if event["event_type"] in ("signup", "identify"):
            props = event["properties"]
            traits.setdefault(event["user_id"], set()).add((props["country"], props["plan"]))
    assert any(len(versions) > 1 for versions in traits.values())


def test_purchases_obey_the_shop_schema_ranges() -> None:
    events = [json.loads(line.text) for line in _lines(GeneratorConfig(seed=4, start=START), 3000)]
    purchases = [e["properties"] for e in events if e["event_type"] == "purchase"]
    assert purchases
    for props in purchases:
        assert 0 <= props["amount"] <= 1e6
        assert props["quantity"] >= 1
        assert props["currency"] in ("EUR", "USD", "GBP")


def test_timestamps_are_utc_rfc3339_and_advance() -> None:
    lines = _lines(GeneratorConfig(seed=5, start=START), 10)
    stamps = [datetime.fromisoformat(json.loads(line.text)["timestamp"]) for line in lines]
    assert stamps[0] == START
    assert stamps == sorted(stamps)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), dup=st.floats(0, 0.3), bad=st.floats(0, 0.3), count=st.integers(0, 400))
def test_duplicates_repeat_recent_valid_lines_and_invalid_lines_break_their_rule(
        seed: int, dup: float, bad: float, count: int) -> None:
    lines = _lines(GeneratorConfig(seed=seed, start=START, duplicate_share=dup, invalid_share=bad), count)
    assert len(lines) == count
    valid_texts = set()
    for line in lines:
        if line.kind == "valid":
            valid_texts.add(line.text)
        elif line.kind == "duplicate":
            assert line.text in valid_texts
        else:
            assert line.invalid_kind in INVALID_KINDS
            if line.invalid_kind == "not_json":
                with pytest.raises(json.JSONDecodeError):
                    json.loads(line.text)
    ids = [line.event_id for line in lines if line.kind == "valid"]
    assert len(ids) == len(set(ids))


def test_shares_are_roughly_what_was_asked() -> None:
    kinds = Counter(line.kind for line in _lines(
        GeneratorConfig(seed=9, start=START, duplicate_share=0.1, invalid_share=0.05), 10_000))
    assert 800 < kinds["duplicate"] < 1200
    assert 350 < kinds["invalid"] < 650


@pytest.mark.parametrize("kwargs", [
    {"duplicate_share": -0.1}, {"invalid_share": 1.0}, {"duplicate_share": 0.6, "invalid_share": 0.5},
    {"users": 0}, {"invalid_kinds": ("nope",)}, {"invalid_kinds": ()},
])
def test_bad_configuration_names_the_setting(kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match="share|users|invalid_kinds"):
        GeneratorConfig(**kwargs)
