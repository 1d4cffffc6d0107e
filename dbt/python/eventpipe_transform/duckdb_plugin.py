"""A dbt-duckdb plugin that loads DuckDB's avro and iceberg extensions offline, from their PyPI wheels.

The duckdb-extension-avro / -iceberg packages ship the extension binaries for duckdb==1.5.5; loading them by
path means no INSTALL (no download) ever happens. avro must be loaded first: iceberg reads manifests with it.
Listed in profiles.yml under `plugins`.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import duckdb_extension_avro
import duckdb_extension_iceberg
from dbt.adapters.duckdb.plugins import BasePlugin


def extension_file(package: ModuleType, name: str) -> Path:
    """The extension binary inside its wheel, for the running DuckDB version."""
    version = f"v{duckdb.__version__}"
    path = Path(package.__file__ or "").parent / "extensions" / version / f"{name}.duckdb_extension"
    if not path.is_file():
        raise FileNotFoundError(f"DuckDB extension {name} for DuckDB {duckdb.__version__} not found at {path}")
    return path


def load_iceberg(conn: Any) -> None:
    """Load avro then iceberg into `conn` (a DuckDB connection) from the wheels."""
    for package, name in ((duckdb_extension_avro, "avro"), (duckdb_extension_iceberg, "iceberg")):
        path = str(extension_file(package, name)).replace("'", "''")
        conn.execute(f"LOAD '{path}'")


class Plugin(BasePlugin):  # type: ignore[misc]
    """Loads the extensions on every connection dbt-duckdb opens."""

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.config = plugin_config

    def configure_connection(self, conn: Any) -> None:
        load_iceberg(conn)
