"""The runner's source resolution: metadata files through pyiceberg, promoted columns from the table's schema."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from eventpipe_common.errors import ConfigurationError
from eventpipe_common.tables import raw_events_schema
from eventpipe_transform.sources import open_catalog, promoted_columns, resolve_sources

from tests.helpers.pipeline_writer import NAMESPACE, PipelineWriter, catalog_properties


def test_promoted_columns_are_the_columns_beyond_the_envelope() -> None:
    names = [f.name for f in raw_events_schema([("amount", "double"), ("plan", "string")]).fields]
    assert promoted_columns(names) == ("amount", "plan")
    assert promoted_columns([f.name for f in raw_events_schema().fields]) == ()


def test_resolve_sources_follows_each_new_snapshot(tmp_path: Path) -> None:
    """The SQL catalog writes no version-hint: the metadata file dbt gets is the catalog's current one, and it
    moves with every commit."""
    writer = PipelineWriter(tmp_path)
    catalog = open_catalog("eventpipe", catalog_properties(tmp_path))
    first = resolve_sources(catalog, NAMESPACE)
    assert first.promoted_columns == ("amount", "currency", "product_id", "quantity")
    event = {"event_id": "x1", "event_type": "page_view", "timestamp": "2024-01-01T00:00:00Z", "properties": {}}
    writer.commit([event], dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    second = resolve_sources(catalog, NAMESPACE)
    assert second.raw_events_metadata != first.raw_events_metadata
    assert second.raw_events_metadata == catalog.load_table(f"{NAMESPACE}.raw_events").metadata_location
    assert Path(second.raw_events_metadata.removeprefix("file://")).is_file()
    assert second.dbt_vars()["raw_events_rejected_metadata"] == first.raw_events_rejected_metadata


def test_missing_rejected_table_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    writer = PipelineWriter(tmp_path)
    writer.catalog.drop_table(f"{NAMESPACE}.raw_events_rejected")
    with pytest.raises(ConfigurationError, match="shop.raw_events_rejected") as error:
        resolve_sources(writer.catalog, NAMESPACE)
    assert error.value.details == {"table": "shop.raw_events_rejected"}
