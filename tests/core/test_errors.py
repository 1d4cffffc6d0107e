"""The error hierarchy (Property 12): every Rust error reaches Python as an EventpipeError subclass."""

from __future__ import annotations

from pathlib import Path

import eventpipe_core as ec
import pytest
from eventpipe_core import _native
from hypothesis import given, settings
from hypothesis import strategies as st


def test_hierarchy() -> None:
    for cls in (ec.ParseError, ec.SchemaError, ec.UnsupportedFormatError, ec.ValidationFailed):
        assert issubclass(cls, ec.EventpipeError)
    assert issubclass(ec.EventpipeError, ValueError)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=200), st.text(max_size=30))
def test_rust_errors_propagate(garbage: bytes, message: str) -> None:
    """Property 12: Rust errors propagate to Python: whatever the input, the core either answers or raises an
    EventpipeError (never a bare RuntimeError or a PanicException), and a panic inside Rust surfaces as
    EventpipeError with its message while the interpreter goes on."""
    for call in (
        lambda: ec.parse_json(garbage),
        lambda: ec.parse_csv(garbage),
        lambda: ec.process_batch(garbage),
        lambda: ec.process_batch(garbage, format="json"),
        lambda: ec.process_batch(garbage, format="csv"),
        lambda: ec.Schema(garbage.decode("utf-8", "replace")),
    ):
        try:
            call()
        except ec.EventpipeError as e:
            assert str(e), "an error must carry its message"
    # A panic is a fault we cannot cause through valid API use: the module has a hook that panics on purpose.
    with pytest.raises(ec.EventpipeError) as info:
        _native._panic_for_tests(message)
    assert "internal error" in str(info.value)
    assert message in str(info.value)
    assert ec.parse_json(b'{"still": "alive"}') == [{"still": "alive"}]


def test_schema_error_names_the_rule() -> None:
    with pytest.raises(ec.SchemaError) as info:
        ec.Schema({"fields": [{"path": "user_id"}, {"path": "user_id", "pattern": "("}]})
    assert info.value.rule == "fields[1].pattern"
    with pytest.raises(ec.SchemaError) as info:
        ec.Schema('{"promote": [{"path": "properties.a", "column": "a", "type": "decimal"}]}')
    assert info.value.rule == "promote[0].type"
    with pytest.raises(ec.SchemaError):
        ec.Schema("not json")


def test_broken_json_array_fails_the_batch_with_position() -> None:
    with pytest.raises(ec.ParseError) as info:
        ec.process_batch(b'[{"a": 1},\n {"b": ]', format="json")
    assert info.value.line == 2


def test_write_errors_are_eventpipe_errors(tmp_path: Path) -> None:
    result = ec.process_batch(b"")
    target = str(tmp_path / "x.parquet")
    with pytest.raises(ec.EventpipeError):
        ec.write_iceberg_parquet(result, "/nonexistent-dir/x.parquet", '{"fields": []}')
    with pytest.raises(ec.EventpipeError):
        ec.write_iceberg_parquet(result, target, "{}")
    with pytest.raises(ec.EventpipeError):
        ec.write_iceberg_parquet(result, target, '{"fields": []}', compression="lz4")  # type: ignore[arg-type]
    with pytest.raises(ec.EventpipeError):
        ec.read_iceberg_parquet("/nonexistent-dir/x.parquet")
    with pytest.raises(TypeError):
        ec.write_iceberg_parquet(object(), target, '{"fields": []}')
