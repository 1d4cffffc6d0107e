"""examples/shop-schema.json through the Rust core: generated shop traffic passes, every invalid kind is
rejected naming the field it breaks, and the promoted columns are the ones the dbt models read."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import eventpipe_core
import pytest
from eventpipe_cli.generator import INVALID_KINDS, GeneratorConfig, generate
from eventpipe_cli.locations import shop_schema
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def schema() -> eventpipe_core.Schema:
    return eventpipe_core.Schema(shop_schema().read_text())


def test_schema_promotes_the_shop_columns(schema: eventpipe_core.Schema) -> None:
    assert schema.promoted == [("amount", "double"), ("currency", "string"), ("product_id", "string"),
                               ("quantity", "long")]
    assert set(schema.event_types or []) == {"page_view", "product_view", "add_to_cart", "purchase", "signup",
                                             "identify", "product_updated"}


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32), count=st.integers(1, 300), dup=st.floats(0, 0.2), bad=st.floats(0, 0.2))
def test_generated_lines_are_what_they_claim(schema: eventpipe_core.Schema, seed: int, count: int, dup: float,
                                             bad: float) -> None:
    lines = list(generate(GeneratorConfig(seed=seed, duplicate_share=dup, invalid_share=bad,
                                          start=datetime(2026, 11, 27, tzinfo=UTC)), count))
    result = eventpipe_core.process_batch("\n".join(line.text for line in lines).encode(), schema=schema)
    rejects = {r.line: r for r in result.rejects}
    for number, line in enumerate(lines, start=1):
        if line.kind == "invalid":
            named = {v.field for v in rejects[number].violations} | {v.rule for v in rejects[number].violations}
            assert line.expected_field in named, (line.invalid_kind, rejects[number].reason)
        else:
            assert number not in rejects, (line.text, rejects[number].reason)
    kinds = Counter(line.kind for line in lines)
    assert result.records.num_rows == len({line.event_id for line in lines if line.kind != "invalid"})
    assert result.duplicates == kinds["duplicate"] + kinds["valid"] - result.records.num_rows


def test_every_invalid_kind_is_covered(schema: eventpipe_core.Schema) -> None:
    for kind in INVALID_KINDS:
        lines = [line for line in generate(GeneratorConfig(seed=1, invalid_share=0.9, invalid_kinds=(kind,)), 20)
                 if line.kind == "invalid"]
        result = eventpipe_core.process_batch("\n".join(line.text for line in lines).encode(), schema=schema)
        assert len(result.rejects) == len(lines) and result.records.num_rows == 0, kind
