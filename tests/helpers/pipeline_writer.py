"""Writes shop events into real Iceberg tables the way the pipeline does: eventpipe_core.process_batch (parse,
validate, transform, dedupe within the batch, promote), then the consumer's lineage columns (ingested_at, shard,
sequence, job), then a pyiceberg append into a SQL catalog on SQLite with a file warehouse."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eventpipe_core
import pyarrow as pa
from eventpipe_common import tables
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

NAMESPACE = "shop"
SHARD = "shardId-000000000000"

# The shop demo's pipeline schema: the promoted columns dbt expects by these exact names.
SHOP_SCHEMA: dict[str, Any] = {
    "event_types": ["page_view", "product_view", "add_to_cart", "purchase", "signup", "identify",
                    "product_updated"],
    "fields": [
        {"path": "properties.amount", "type": "number", "min": 0, "event_types": ["purchase"]},
        {"path": "properties.currency", "type": "string", "event_types": ["purchase"]},
    ],
    "promote": [
        {"path": "properties.amount", "column": "amount", "type": "double"},
        {"path": "properties.currency", "column": "currency", "type": "string"},
        {"path": "properties.product_id", "column": "product_id", "type": "string"},
        {"path": "properties.quantity", "column": "quantity", "type": "long"},
    ],
}


def catalog_properties(state_dir: Path) -> dict[str, str]:
    """The embedded default catalog (the same as PipelineSettings.resolved_catalog_properties())."""
    state = state_dir.resolve()
    return {"type": "sql", "uri": f"sqlite:///{state / 'catalog.db'}", "warehouse": (state / "warehouse").as_uri()}


@dataclass
class PipelineWriter:
    """The two tables of one pipeline in `state_dir`, and a commit counter for lineage columns."""

    state_dir: Path
    schema: eventpipe_core.Schema = field(default_factory=lambda: eventpipe_core.Schema(SHOP_SCHEMA))
    commits: int = 0
    sequence: int = 0
    namespace: str = NAMESPACE

    def __post_init__(self) -> None:
        (self.state_dir / "warehouse").mkdir(parents=True, exist_ok=True)
        self.catalog: Catalog = SqlCatalog("eventpipe", **catalog_properties(self.state_dir))
        self.catalog.create_namespace_if_not_exists(self.namespace)
        self.events: Table = self.catalog.create_table_if_not_exists(
            f"{self.namespace}.{tables.RAW_EVENTS}", schema=tables.raw_events_schema(self.schema.promoted),
            partition_spec=tables.raw_events_partition_spec(), properties=tables.TABLE_PROPERTIES)
        self.rejected: Table = self.catalog.create_table_if_not_exists(
            f"{self.namespace}.{tables.RAW_EVENTS_REJECTED}", schema=tables.raw_events_rejected_schema(),
            partition_spec=tables.raw_events_rejected_partition_spec(), properties=tables.TABLE_PROPERTIES)

    def commit(self, events: Sequence[Mapping[str, Any]], ingested_at: dt.datetime) -> eventpipe_core.BatchResult:
        """One consumer commit: the batch's valid events to raw_events, its rejects to raw_events_rejected."""
        self.commits += 1
        job_id = f"job-{self.commits}"
        data = "\n".join(json.dumps(event) for event in events)
        result = eventpipe_core.process_batch(data, format="ndjson", schema=self.schema, job_id=job_id)
        records = result.records
        count = records.num_rows
        sequences = [f"{self.sequence + i:020d}" for i in range(count)]
        self.sequence += count
        records = (records
                   .append_column("ingested_at", pa.array([ingested_at] * count, pa.timestamp("us", tz="UTC")))
                   .append_column("shard_id", pa.array([SHARD] * count, pa.string()))
                   .append_column("sequence_number", pa.array(sequences, pa.string())))
        if "job_id" in records.column_names:
            records = records.drop_columns(["job_id"])
        records = records.append_column("job_id", pa.array([job_id] * count, pa.string()))
        self.events = self.catalog.load_table(f"{self.namespace}.{tables.RAW_EVENTS}")
        target = self.events.schema().as_arrow()
        if count:
            self.events.append(records.select(target.names).cast(target))
        if result.rejects:
            self._commit_rejects(result.rejects, job_id, ingested_at)
        return result

    def snapshot_id(self) -> str:
        """raw_events' current snapshot id, as the DAG's resolve step reads it."""
        snapshot = self.catalog.load_table(f"{self.namespace}.{tables.RAW_EVENTS}").current_snapshot()
        assert snapshot is not None
        return str(snapshot.snapshot_id)

    def _commit_rejects(self, rejects: Sequence[Any], job_id: str, rejected_at: dt.datetime) -> None:
        self.rejected = self.catalog.load_table(f"{self.namespace}.{tables.RAW_EVENTS_REJECTED}")
        target = self.rejected.schema().as_arrow()
        rows = [{"raw": r.raw, "reasons": json.dumps([v.to_dict() for v in r.violations], default=str),
                 "line": r.line, "source": "consumer", "job_id": job_id, "shard_id": SHARD,
                 "sequence_number": None, "rejected_at": rejected_at} for r in rejects]
        self.rejected.append(pa.Table.from_pylist(rows, schema=target))

    def raw_rows(self) -> list[dict[str, Any]]:
        """Everything in raw_events, read back through pyiceberg."""
        table = self.catalog.load_table(f"{self.namespace}.{tables.RAW_EVENTS}")
        return table.scan().to_arrow().to_pylist()
