"""Small DuckDB warehouses shaped like dbt's output (staging, marts), built by the tests themselves.

The column lists follow the contract with the dbt project; the tests never run dbt. Rows are plain dicts so
hypothesis strategies can build clean data sets and inject violations at chosen rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

STG_EVENTS_DDL: dict[str, str] = {
    "event_id": "VARCHAR",
    "event_type": "VARCHAR",
    "event_ts": "TIMESTAMPTZ",
    "event_date": "DATE",
    "event_hour": "INTEGER",
    "user_id": "VARCHAR",
    "session_id": "VARCHAR",
    "product_id": "VARCHAR",
    "amount": "DOUBLE",
    "currency": "VARCHAR",
    "quantity": "INTEGER",
    "properties": "VARCHAR",
    "ingested_at": "TIMESTAMPTZ",
}
STG_USERS_DDL: dict[str, str] = {
    "user_id": "VARCHAR",
    "email": "VARCHAR",
    "country": "VARCHAR",
    "plan": "VARCHAR",
    "changed_at": "TIMESTAMPTZ",
}
DIM_USERS_DDL: dict[str, str] = {
    "user_sk": "VARCHAR",
    "user_id": "VARCHAR",
    "email": "VARCHAR",
    "country": "VARCHAR",
    "plan": "VARCHAR",
    "valid_from": "TIMESTAMPTZ",
    "valid_to": "TIMESTAMPTZ",
    "is_current": "BOOLEAN",
}
DIM_PRODUCTS_DDL: dict[str, str] = {
    "product_sk": "VARCHAR",
    "product_id": "VARCHAR",
    "name": "VARCHAR",
    "category": "VARCHAR",
    "price": "DOUBLE",
}
FACT_EVENTS_DDL: dict[str, str] = {
    "event_id": "VARCHAR",
    "event_type": "VARCHAR",
    "event_ts": "TIMESTAMPTZ",
    "event_date": "DATE",
    "user_id": "VARCHAR",
    "user_sk": "VARCHAR",
    "product_id": "VARCHAR",
    "product_sk": "VARCHAR",
    "amount": "DOUBLE",
    "currency": "VARCHAR",
    "quantity": "INTEGER",
}

BASE_TS = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "purchase", "signup", "identify", "product_updated")


def event_row(i: int, event_type: str = "purchase", amount: float | None = 10.0) -> dict[str, Any]:
    ts = BASE_TS + dt.timedelta(minutes=i)
    product = event_type in ("product_view", "add_to_cart", "purchase", "product_updated")
    return {
        "event_id": f"e{i}",
        "event_type": event_type,
        "event_ts": ts,
        "event_date": ts.date(),
        "event_hour": ts.hour,
        "user_id": f"u{i % 7}",
        "session_id": f"s{i % 3}",
        "product_id": f"p{i % 5}" if product else None,
        "amount": amount if event_type == "purchase" else None,
        "currency": "EUR" if event_type == "purchase" else None,
        "quantity": 1 if event_type == "purchase" else None,
        "properties": "{}",
        "ingested_at": ts + dt.timedelta(seconds=2),
    }


def user_row(i: int) -> dict[str, Any]:
    return {"user_id": f"u{i}", "email": f"u{i}@example.com", "country": "FR", "plan": "free",
            "changed_at": BASE_TS + dt.timedelta(hours=i)}


def create_table(con: duckdb.DuckDBPyConnection, name: str, ddl: dict[str, str],
                 rows: Sequence[dict[str, Any]]) -> None:
    schema, _, _ = name.partition(".")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(f"DROP TABLE IF EXISTS {name}")
    columns = ", ".join(f"{c} {t}" for c, t in ddl.items())
    con.execute(f"CREATE TABLE {name} ({columns})")
    if rows:
        placeholders = ", ".join("?" for _ in ddl)
        con.executemany(f"INSERT INTO {name} VALUES ({placeholders})",
                        [[row.get(c) for c in ddl] for row in rows])


def write_staging(path: Path, events: Sequence[dict[str, Any]], users: Sequence[dict[str, Any]],
                  events_ddl: dict[str, str] | None = None) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        create_table(con, "staging.stg_events", events_ddl or STG_EVENTS_DDL, events)
        create_table(con, "staging.stg_users", STG_USERS_DDL, users)
    finally:
        con.close()


def marts_rows(n_users: int, n_products: int, n_events: int) -> dict[str, list[dict[str, Any]]]:
    """A consistent star: one current version per user, every fact key resolving, counts matching staging."""
    dim_users = []
    for u in range(n_users):
        dim_users.append({"user_sk": f"us{u}-0", "user_id": f"u{u}", "email": f"u{u}@old.example", "country": "FR",
                          "plan": "free", "valid_from": BASE_TS, "valid_to": BASE_TS + dt.timedelta(days=1),
                          "is_current": False})
        dim_users.append({"user_sk": f"us{u}-1", "user_id": f"u{u}", "email": f"u{u}@example.com", "country": "FR",
                          "plan": "pro", "valid_from": BASE_TS + dt.timedelta(days=1), "valid_to": None,
                          "is_current": True})
    dim_products = [{"product_sk": f"ps{p}", "product_id": f"p{p}", "name": f"Product {p}", "category": "books",
                     "price": 9.5 + p} for p in range(n_products)]
    events = []
    facts = []
    for i in range(n_events):
        event_type = EVENT_TYPES[i % len(EVENT_TYPES)]
        e = event_row(i, event_type)
        e["user_id"] = f"u{i % n_users}"
        if e["product_id"] is not None:
            e["product_id"] = f"p{i % n_products}"
        events.append(e)
        facts.append({
            "event_id": e["event_id"], "event_type": event_type, "event_ts": e["event_ts"],
            "event_date": e["event_date"], "user_id": e["user_id"], "user_sk": f"us{i % n_users}-1",
            "product_id": e["product_id"], "product_sk": f"ps{i % n_products}" if e["product_id"] else None,
            "amount": e["amount"], "currency": e["currency"], "quantity": e["quantity"],
        })
    users = [user_row(u) for u in range(n_users)]
    return {"stg_events": events, "stg_users": users, "dim_users": dim_users, "dim_products": dim_products,
            "fact_events": facts}


def write_marts(path: Path, data: dict[str, list[dict[str, Any]]]) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        create_table(con, "staging.stg_events", STG_EVENTS_DDL, data["stg_events"])
        create_table(con, "staging.stg_users", STG_USERS_DDL, data["stg_users"])
        create_table(con, "marts.dim_users", DIM_USERS_DDL, data["dim_users"])
        create_table(con, "marts.dim_products", DIM_PRODUCTS_DDL, data["dim_products"])
        create_table(con, "marts.fact_events", FACT_EVENTS_DDL, data["fact_events"])
    finally:
        con.close()
