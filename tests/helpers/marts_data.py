"""Small marts (fact_events, dim_users, dim_products) and quality results, built by the tests in real DuckDB.

Columns follow dbt/models/marts/_models.yml; the quality_results DDL is read from eventpipe_quality's own module
(gx/src/eventpipe_quality/results.py), so the tests follow the writer's contract without importing GX.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

REPO = Path(__file__).resolve().parents[2]

FACT_EVENTS = {"event_id": "VARCHAR", "event_type": "VARCHAR", "event_ts": "TIMESTAMPTZ", "event_date": "DATE",
               "event_hour": "INTEGER", "user_id": "VARCHAR", "user_sk": "VARCHAR", "session_id": "VARCHAR",
               "product_id": "VARCHAR", "product_sk": "VARCHAR", "amount": "DOUBLE", "currency": "VARCHAR",
               "quantity": "INTEGER", "ingested_at": "TIMESTAMPTZ", "dbt_loaded_at": "TIMESTAMPTZ"}
DIM_USERS = {"user_sk": "VARCHAR", "user_id": "VARCHAR", "email": "VARCHAR", "country": "VARCHAR",
             "plan": "VARCHAR", "valid_from": "TIMESTAMPTZ", "valid_to": "TIMESTAMPTZ", "is_current": "BOOLEAN",
             "version_number": "INTEGER"}
DIM_PRODUCTS = {"product_sk": "VARCHAR", "product_id": "VARCHAR", "name": "VARCHAR", "category": "VARCHAR",
                "price": "DOUBLE", "is_inferred": "BOOLEAN"}


@dataclass(frozen=True)
class Event:
    event_id: str
    event_type: str
    event_ts: dt.datetime
    user_id: str | None
    product_id: str | None
    amount: float | None


@dataclass(frozen=True)
class Marts:
    events: list[Event]
    countries: dict[str, str]     # user_id -> country (one current version per user)
    categories: dict[str, str]    # product_id -> category


def user_sk(user_id: str) -> str:
    return f"u-{user_id}"


def product_sk(product_id: str) -> str:
    return f"p-{product_id}"


def create_marts(connection: duckdb.DuckDBPyConnection, marts: Marts) -> None:
    """The three marts in schema `marts` of this connection, rows as dbt would build them."""
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("CREATE SCHEMA IF NOT EXISTS marts")
    for name, columns in (("fact_events", FACT_EVENTS), ("dim_users", DIM_USERS), ("dim_products", DIM_PRODUCTS)):
        body = ", ".join(f"{c} {t}" for c, t in columns.items())
        connection.execute(f"CREATE OR REPLACE TABLE marts.{name} ({body})")
    users = [(user_sk(u), u, f"{u}@example.com", country, "free", dt.datetime(2020, 1, 1, tzinfo=dt.UTC), None,
              True, 1) for u, country in marts.countries.items()]
    products = [(product_sk(p), p, f"product {p}", category, 9.5, False) for p, category in marts.categories.items()]
    facts = [(e.event_id, e.event_type, e.event_ts, e.event_ts.astimezone(dt.UTC).date(),
              e.event_ts.astimezone(dt.UTC).hour, e.user_id,
              user_sk(e.user_id) if e.user_id in marts.countries else None, None, e.product_id,
              product_sk(e.product_id) if e.product_id in marts.categories else None, e.amount,
              "EUR" if e.amount is not None else None, None, e.event_ts, e.event_ts) for e in marts.events]
    for name, rows in (("dim_users", users), ("dim_products", products), ("fact_events", facts)):
        if rows:
            marks = ", ".join("?" for _ in rows[0])
            connection.executemany(f"INSERT INTO marts.{name} VALUES ({marks})", rows)


@dataclass
class MemoryWarehouse:
    """The page's Warehouse over an open DuckDB connection (the same engine and SQL as the app's file)."""

    connection: duckdb.DuckDBPyConnection
    dialect: str = "duckdb"

    def query(self, sql: str, params: list[Any]) -> pd.DataFrame:
        return self.connection.execute(sql, params).df()


def results_ddl() -> str:
    text = (REPO / "gx" / "src" / "eventpipe_quality" / "results.py").read_text()
    match = re.search(r'RESULTS_DDL = f"""(.*?)"""', text, re.S)
    assert match, "RESULTS_DDL not found in eventpipe_quality.results"
    return match.group(1).replace("{RESULTS_TABLE}", "quality_results")


def write_results(db_path: Path, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows in quality_results' column order, as eventpipe_quality.results.append_results writes them."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(str(db_path))
    try:
        connection.execute(results_ddl())
        if rows:
            connection.executemany(f"INSERT INTO quality_results VALUES ({', '.join('?' for _ in rows[0])})",
                                   list(rows))
    finally:
        connection.close()
