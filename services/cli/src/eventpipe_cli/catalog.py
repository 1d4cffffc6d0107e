"""Reading the pipeline's Iceberg tables from the CLI: the catalog, snapshot fingerprints, DuckDB views.

`query` needs DuckDB over Iceberg in the services virtualenv, where DuckDB's iceberg extension is not installed
(its offline wheels live in the analytics venv). So the tables are scanned with pyiceberg (which reads the SQL
catalog and plans the files) and the Arrow result is registered into DuckDB as a view: exact, offline, and fine
for the local stack's sizes. The dbt models live in `<state>/warehouse.duckdb`, attached read-only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eventpipe_common.settings import PipelineSettings
from eventpipe_common.tables import RAW_EVENTS, RAW_EVENTS_REJECTED

TABLES = (RAW_EVENTS, RAW_EVENTS_REJECTED)


def settings_for(state_dir: Path, namespace: str | None = None) -> PipelineSettings:
    overrides: dict[str, Any] = {"state_dir": state_dir.resolve()}
    if namespace:
        overrides["namespace"] = namespace
    return PipelineSettings(**overrides)


def load_catalog(settings: PipelineSettings) -> Any:
    from pyiceberg.catalog import load_catalog as _load

    return _load(settings.catalog_name, **settings.resolved_catalog_properties())


def load_table(settings: PipelineSettings, name: str) -> Any | None:
    """The table, or None while the consumer has not created it yet."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    if not (settings.state_dir / "catalog.db").exists() and not settings.catalog_properties:
        return None
    try:
        return load_catalog(settings).load_table(f"{settings.namespace}.{name}")
    except (NoSuchTableError, NoSuchNamespaceError):
        return None


def fingerprint(settings: PipelineSettings) -> str | None:
    """The current snapshot ids of both tables, as one string; None when neither has a snapshot."""
    ids = []
    for name in TABLES:
        table = load_table(settings, name)
        snapshot = table.current_snapshot() if table is not None else None
        ids.append(str(snapshot.snapshot_id) if snapshot is not None else "-")
    return None if all(i == "-" for i in ids) else ":".join(ids)


def last_snapshot(settings: PipelineSettings, name: str) -> dict[str, Any] | None:
    """When and what the table's latest commit was (id, time, summary), for `status`."""
    table = load_table(settings, name)
    if table is None:
        return None
    snapshot = table.current_snapshot()
    if snapshot is None:
        return None
    summary = snapshot.summary.additional_properties if snapshot.summary is not None else {}
    return {"snapshot_id": snapshot.snapshot_id, "timestamp_ms": snapshot.timestamp_ms,
            "total_records": summary.get("total-records"), "added_records": summary.get("added-records"),
            "added_files": summary.get("added-data-files"), "snapshots": len(table.metadata.snapshots)}


def register_tables(connection: Any, settings: PipelineSettings) -> list[str]:
    """Register every existing pipeline table as a DuckDB view named like the table; return the names."""
    import pyarrow as pa

    names = []
    for name in TABLES:
        table = load_table(settings, name)
        if table is None:
            continue
        arrow: pa.Table = table.scan().to_arrow()
        connection.register(name, arrow)
        names.append(name)
    return names


def attach_models(connection: Any, duckdb_path: Path) -> bool:
    """Attach dbt's DuckDB file read-only as `warehouse` (schemas staging, intermediate, marts) when it exists."""
    if not duckdb_path.exists():
        return False
    connection.execute(f"ATTACH '{duckdb_path}' AS warehouse (READ_ONLY)")
    return True
