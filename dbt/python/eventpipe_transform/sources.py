"""Where the dbt sources are: the Iceberg tables' current metadata files, resolved through pyiceberg.

The SQL catalog writes no version-hint file, so DuckDB's iceberg_scan() cannot find the current snapshot on its
own: we ask the catalog for each table's metadata location and pass it to dbt as a var.
"""

from __future__ import annotations

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

    def dbt_vars(self) -> dict[str, Any]:
        """The vars the dbt project reads (dbt_project.yml documents each)."""
        return {
            "eventpipe_namespace": self.namespace,
            "raw_events_metadata": self.raw_events_metadata,
            "raw_events_rejected_metadata": self.raw_events_rejected_metadata,
            "promoted_columns": list(self.promoted_columns),
        }


def promoted_columns(column_names: list[str]) -> tuple[str, ...]:
    """Columns of raw_events beyond the envelope and lineage ones: the pipeline schema's promoted properties."""
    base = {field.name for field in raw_events_schema().fields}
    return tuple(name for name in column_names if name not in base)


def resolve_sources(catalog: Catalog, namespace: str) -> SourceTables:
    """Look both tables up in the catalog; a missing table is a configuration error naming it."""
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
    return SourceTables(
        namespace=namespace,
        raw_events_metadata=locations[RAW_EVENTS],
        raw_events_rejected_metadata=locations[RAW_EVENTS_REJECTED],
        promoted_columns=promoted_columns(columns),
    )


def open_catalog(name: str, properties: dict[str, str]) -> Catalog:
    """The pipeline's catalog, from the same properties the consumer writes with."""
    return load_catalog(name, **properties)
