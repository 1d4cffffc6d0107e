"""Load batches from the warehouse as pandas DataFrames.

GX validates pandas batches here, not SQL batches: with GX's SQL data sources on duckdb_engine, the connection
goes back to the pool before the results are read (GX issues #10738 and #11579), so we read each batch
ourselves (DuckDB's own client, or SQLAlchemy for a remote warehouse such as Snowflake) and hand GX the frame.
The same suites therefore run unchanged on both. The price: a batch must fit in memory.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Protocol

import duckdb
import pandas as pd
from eventpipe_common.errors import DependencyUnavailableError, EventpipeError


def normalize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Give each logical type one pandas dtype, whatever width or flavour the model or warehouse chose.

    Integers -> nullable Int64, float32 and all-Decimal columns (Snowflake NUMBER) -> float64, naive timestamps
    and dates -> UTC-aware (the pipeline stores UTC). Anything else is left alone, so a real type mismatch
    (text in a numeric column, a float where an integer belongs) still shows.
    """
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            continue
        if pd.api.types.is_integer_dtype(series):
            frame[column] = series.astype("Int64")
        elif pd.api.types.is_float_dtype(series) and series.dtype != "float64":
            frame[column] = series.astype("float64")
        elif pd.api.types.is_datetime64_dtype(series) and getattr(series.dt, "tz", None) is None:
            frame[column] = series.dt.tz_localize("UTC")
        elif series.dtype == object:
            present = series.dropna()
            if len(present) and all(isinstance(v, Decimal) for v in present):
                frame[column] = series.astype("float64")
    return frame


class BatchLoadError(EventpipeError):
    """A batch's query failed (missing table or column, lock held by a writer, ...)."""

    code = "batch_load_error"


class Warehouse(Protocol):
    def frame(self, query: str) -> pd.DataFrame: ...

    def close(self) -> None: ...


class DuckDBWarehouse:
    """A read-only connection to the DuckDB file dbt builds; timestamps come back in UTC."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise DependencyUnavailableError(f"warehouse file {path} does not exist: has dbt built it?", path=str(path))
        try:
            self._con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            raise DependencyUnavailableError(f"cannot open warehouse {path}: {exc}", path=str(path)) from exc
        self._con.execute("SET TimeZone = 'UTC'")
        self.location = str(path)

    def frame(self, query: str) -> pd.DataFrame:
        try:
            relation = self._con.sql(query)
            declared = dict(zip(relation.columns, (str(t) for t in relation.types), strict=True))
            frame = relation.df()
        except duckdb.Error as exc:
            raise BatchLoadError(str(exc).splitlines()[0], query=query) from exc
        # A VARCHAR column holding only NULLs arrives as `object` and would pass any per-value type check:
        # give it the string dtype its declared type says it has.
        for column, sql_type in declared.items():
            if sql_type == "VARCHAR" and frame[column].dtype == object:
                frame[column] = frame[column].astype("str")
        return frame

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class SqlAlchemyWarehouse:
    """Any warehouse SQLAlchemy can reach (Snowflake with snowflake-sqlalchemy installed, PostgreSQL, ...)."""

    def __init__(self, url: str) -> None:
        import sqlalchemy

        self._sa = sqlalchemy
        try:
            self._engine = sqlalchemy.create_engine(url)
        except (sqlalchemy.exc.ArgumentError, ImportError) as exc:
            # The URL may carry a password: name only its scheme, never the URL or the parser's message.
            scheme = url.split(":", 1)[0]
            raise DependencyUnavailableError(
                f"cannot use warehouse URL with scheme {scheme!r}: {type(exc).__name__}", field="warehouse_url"
            ) from None
        self.location = self._engine.url.render_as_string(hide_password=True)

    def frame(self, query: str) -> pd.DataFrame:
        try:
            with self._engine.connect() as con:
                return pd.read_sql(self._sa.text(query), con)
        except (self._sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
            raise BatchLoadError(str(exc).splitlines()[0], query=query) from exc

    def close(self) -> None:
        self._engine.dispose()
