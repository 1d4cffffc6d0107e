"""Connections to the marts: dbt's DuckDB file locally, Snowflake in production (EVENTPIPE_DASHBOARD_WAREHOUSE).

The DuckDB file is opened read-only per query: dbt holds its write lock during a build, so a query retries for a
few seconds and then reports the warehouse as busy instead of failing the page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


class WarehouseUnavailableError(RuntimeError):
    """No marts to read: the file does not exist yet, is locked by a dbt build, or Snowflake refused."""


@dataclass
class DuckDBWarehouse:
    path: Path
    dialect: str = "duckdb"
    attempts: int = 20
    retry_delay: float = 0.25

    def query(self, sql: str, params: list[Any]) -> pd.DataFrame:
        import duckdb

        if not self.path.exists():
            raise WarehouseUnavailableError(f"no warehouse yet at {self.path}: dbt has not built the marts")
        for attempt in range(self.attempts):
            try:
                connection = duckdb.connect(str(self.path), read_only=True)
            except duckdb.IOException as exc:
                if attempt == self.attempts - 1:
                    raise WarehouseUnavailableError(f"the warehouse is busy (a dbt build holds it): {exc}") from exc
                time.sleep(self.retry_delay)
                continue
            try:
                connection.execute("SET TimeZone = 'UTC'")
                return connection.execute(sql, params).df()
            except duckdb.CatalogException as exc:
                raise WarehouseUnavailableError(f"the marts are not built yet: {exc}") from exc
            finally:
                connection.close()
        raise WarehouseUnavailableError("the warehouse could not be opened")


@dataclass
class SnowflakeWarehouse:
    """Snowflake with the same SNOWFLAKE_* settings as dbt's profile (dbt/profiles.yml)."""

    settings: dict[str, str]
    dialect: str = "snowflake"
    _connection: Any = field(default=None, repr=False)

    def query(self, sql: str, params: list[Any]) -> pd.DataFrame:
        import snowflake.connector

        snowflake.connector.paramstyle = "qmark"
        if self._connection is None:
            try:
                self._connection = snowflake.connector.connect(**self.settings)
            except snowflake.connector.errors.Error as exc:
                raise WarehouseUnavailableError(f"Snowflake refused the connection: {exc}") from exc
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql, params)
            columns = [str(d[0]).lower() for d in cursor.description or []]
            return pd.DataFrame(cursor.fetchall(), columns=columns)
        finally:
            cursor.close()
