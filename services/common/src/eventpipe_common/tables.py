"""The Iceberg tables of a pipeline: `<ns>.raw_events` and `<ns>.raw_events_rejected` (docs/architecture.md, Tables).

One definition used by the consumer (which creates and writes them), the operator (which provisions them when
asked), the dbt/GX tests and the local stack. The ids below are what we ask for, but pyiceberg's `create_table`
assigns fresh field ids (promoted columns from 100 up become 14 up): anything that writes Parquet for a table
(the Rust core's write_iceberg_parquet) must take the ids from `table.schema()`, never from these builders.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform
from pyiceberg.types import (
    BooleanType,
    DateType,
    DoubleType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

RAW_EVENTS = "raw_events"
RAW_EVENTS_REJECTED = "raw_events_rejected"
FIRST_PROMOTED_FIELD_ID = 100

# Table properties: Parquet with ZSTD, as the design asks.
TABLE_PROPERTIES = {
    "write.format.default": "parquet",
    "write.parquet.compression-codec": "zstd",
    "format-version": "2",
}

PROMOTED_TYPES: dict[str, IcebergType] = {
    "double": DoubleType(),
    "long": LongType(),
    "int": IntegerType(),
    "string": StringType(),
    "boolean": BooleanType(),
}


def raw_events_schema(promoted: Sequence[tuple[str, str]] = ()) -> Schema:
    """The raw_events schema; `promoted` lists (column name, type name) pairs, type names as in PROMOTED_TYPES."""
    fields = [
        NestedField(1, "event_id", StringType(), required=True),
        NestedField(2, "event_type", StringType(), required=True),
        NestedField(3, "event_ts", TimestamptzType(), required=True),
        NestedField(4, "event_date", DateType(), required=True),
        NestedField(5, "event_hour", IntegerType(), required=True),
        NestedField(6, "user_id", StringType(), required=False),
        NestedField(7, "session_id", StringType(), required=False),
        NestedField(8, "properties", StringType(), required=False, doc="The event's properties as JSON text."),
        NestedField(9, "schema_version", IntegerType(), required=True),
        NestedField(10, "ingested_at", TimestamptzType(), required=True),
        NestedField(11, "job_id", StringType(), required=False),
        NestedField(12, "shard_id", StringType(), required=False),
        NestedField(13, "sequence_number", StringType(), required=False),
    ]
    for offset, (name, type_name) in enumerate(promoted):
        if type_name not in PROMOTED_TYPES:
            raise ValueError(f"promoted column {name!r}: unknown type {type_name!r}, expected one of "
                             f"{sorted(PROMOTED_TYPES)}")
        fields.append(NestedField(FIRST_PROMOTED_FIELD_ID + offset, name, PROMOTED_TYPES[type_name], required=False))
    return Schema(*fields)


def raw_events_partition_spec() -> PartitionSpec:
    """Partitioned by day(event_ts)."""
    return PartitionSpec(PartitionField(source_id=3, field_id=1000, transform=DayTransform(), name="event_ts_day"))


def raw_events_rejected_schema() -> Schema:
    """What was refused, why, and where it came from. Nothing accepted disappears: it is here or in raw_events."""
    return Schema(
        NestedField(1, "raw", StringType(), required=True, doc="The line as received."),
        NestedField(2, "reasons", StringType(), required=True, doc="JSON array of {field, rule, message}."),
        NestedField(3, "line", LongType(), required=False, doc="1-based line in the source batch."),
        NestedField(4, "source", StringType(), required=True, doc="ingest or consumer."),
        NestedField(5, "job_id", StringType(), required=False),
        NestedField(6, "shard_id", StringType(), required=False),
        NestedField(7, "sequence_number", StringType(), required=False),
        NestedField(8, "rejected_at", TimestamptzType(), required=True),
    )


def raw_events_rejected_partition_spec() -> PartitionSpec:
    return PartitionSpec(PartitionField(source_id=8, field_id=1000, transform=DayTransform(), name="rejected_at_day"))
