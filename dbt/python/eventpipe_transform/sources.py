"""Where the dbt sources are: the Iceberg tables' current metadata files, resolved through pyiceberg.

The SQL catalog writes no version-hint file, so DuckDB's iceberg_scan() cannot find the current snapshot on its
own: we ask the catalog for each table's metadata location and pass it to dbt as a var.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eventpipe_common.errors import ConfigurationError
from eventpipe_common.tables import RAW_EVENTS, RAW_EVENTS_REJECTED, raw_events_schema
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import NoSuchTableError


@dataclass(frozen=True)
class SourceTables:
    """The inputs of one dbt build."""

    namespace: str
    raw_events_metadata: str
    raw_events_rejected_metadata: str
    promoted_columns: tuple[str, ...]
    raw_events_snapshot_id: int | None = None

    def dbt_vars(self) -> dict[str, Any]:
        """The vars the dbt project reads (dbt_project.yml documents each)."""
        return {
            "eventpipe_namespace": self.namespace,
            "raw_events_metadata": self.raw_events_metadata,
            "raw_events_rejected_metadata": self.raw_events_rejected_metadata,
            "raw_events_snapshot_id": "" if self.raw_events_snapshot_id is None else str(self.raw_events_snapshot_id),
            "promoted_columns": list(self.promoted_columns),
        }


def promoted_columns(column_names: list[str]) -> tuple[str, ...]:
    """Columns of raw_events beyond the envelope and lineage ones: the pipeline schema's promoted properties."""
    base = {field.name for field in raw_events_schema().fields}
    return tuple(name for name in column_names if name not in base)


def promoted_from_schema(schema_json: str | None) -> tuple[str, ...]:
    """The promoted columns a pipeline schema declares (its `promote` list), sorted as the table's extra columns
    are not: dbt only tests membership. None (the envelope contract) promotes nothing."""
    if not schema_json:
        return ()
    schema = json.loads(schema_json)
    return tuple(sorted(str(p["column"]) for p in schema.get("promote") or []))


def parse_snapshot_id(value: str | None) -> int | None:
    """A snapshot id as the SQL may use it: digits only (it is written into iceberg_scan's arguments)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isdigit():
        raise ConfigurationError(f"snapshot id {value!r} is not an Iceberg snapshot id (digits)", snapshot_id=value)
    return int(text)


def resolve_sources(catalog: Catalog, namespace: str, snapshot_id: int | None = None) -> SourceTables:
    """Look both tables up in the catalog; a missing table or a snapshot raw_events does not have is a
    configuration error naming it. With `snapshot_id`, dbt reads raw_events as of that snapshot (the run's)."""
    locations: dict[str, str] = {}
    columns: list[str] = []
    for name in (RAW_EVENTS, RAW_EVENTS_REJECTED):
        identifier = f"{namespace}.{name}"
        try:
            table = catalog.load_table(identifier)
        except NoSuchTableError as exc:
            raise ConfigurationError(f"Iceberg table {identifier} does not exist in catalog {catalog.name}",
                                     table=identifier) from exc
        locations[name] = table.metadata_location
        if name == RAW_EVENTS:
            columns = [field.name for field in table.schema().fields]
            if snapshot_id is not None and table.snapshot_by_id(snapshot_id) is None:
                raise ConfigurationError(f"Iceberg table {identifier} has no snapshot {snapshot_id}",
                                         table=identifier, snapshot_id=str(snapshot_id))
    return SourceTables(
        namespace=namespace,
        raw_events_metadata=locations[RAW_EVENTS],
        raw_events_rejected_metadata=locations[RAW_EVENTS_REJECTED],
        promoted_columns=promoted_columns(columns),
        raw_events_snapshot_id=snapshot_id,
    )


def open_catalog(name: str, properties: dict[str, str]) -> Catalog:
    """The pipeline's catalog, from the same properties the consumer writes with."""
    return load_catalog(name, **properties)
