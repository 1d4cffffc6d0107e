"""The Explore page's data: SQL over the marts only, then time zone and drill-down in pandas.

Every query reads `marts.fact_events`, `marts.dim_users` and `marts.dim_products` (Property 32): the dashboard
never touches staging, intermediate or the raw Iceberg tables. Timestamps are stored in UTC; the SQL counts
events in 15-minute UTC buckets (every real time zone offset is a multiple of 15 minutes), and pandas moves the
buckets to the viewer's time zone before grouping by local day and hour (Property 35). Every filter goes into
the one WHERE clause that every chart's query shares (Property 34).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pandas as pd

MARTS = ("fact_events", "dim_users", "dim_products")
SCHEMA = "marts"
EVENT_LIMIT = 500


class Warehouse(Protocol):
    dialect: str
    """duckdb or snowflake: the one thing the SQL differs by (the 15-minute bucket function)."""

    def query(self, sql: str, params: list[Any]) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Filters:
    """What the viewer chose: a range of local dates (inclusive), a time zone and optional value filters."""

    start: dt.date
    end: dt.date
    tz: str = "UTC"
    event_types: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    product_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Explored:
    """Every chart of the Explore page for one set of filters."""

    daily: pd.DataFrame      # local_date, events, revenue
    by_type: pd.DataFrame    # event_type, events
    by_category: pd.DataFrame  # category, events
    by_country: pd.DataFrame  # country, events
    hourly: pd.DataFrame     # local_hour (0-23), events, for the drilled day
    events: pd.DataFrame     # the drilled hour's events, newest last, times in the viewer's zone


def table(name: str) -> str:
    if name not in MARTS:
        raise ValueError(f"the dashboard reads the marts only, not {name!r}")
    return f"{SCHEMA}.{name}"


def local_midnight_utc(day: dt.date, tz: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), ZoneInfo(tz)).astimezone(dt.UTC)


def utc_window(filters: Filters) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants [start, end) that the viewer's local date range covers."""
    return (local_midnight_utc(filters.start, filters.tz),
            local_midnight_utc(filters.end + dt.timedelta(days=1), filters.tz))


def where(filters: Filters, alias: str = "f") -> tuple[str, list[Any]]:
    """The WHERE clause every Explore query shares, with its parameters (qmark style)."""
    start, end = utc_window(filters)
    clauses = [f"{alias}.event_ts >= ?", f"{alias}.event_ts < ?"]
    params: list[Any] = [start, end]
    for column, values in (("event_type", filters.event_types), ("user_id", filters.user_ids),
                           ("product_id", filters.product_ids)):
        if values:
            clauses.append(f"{alias}.{column} in ({', '.join('?' for _ in values)})")
            params.extend(values)
    return " and ".join(clauses), params


def bucket_expr(dialect: str, column: str) -> str:
    if dialect == "snowflake":
        return f"time_slice({column}, 15, 'MINUTE')"
    return f"time_bucket(INTERVAL '15 minutes', {column})"


def buckets_sql(dialect: str, filters: Filters) -> tuple[str, list[Any]]:
    clause, params = where(filters)
    sql = (f"select {bucket_expr(dialect, 'f.event_ts')} as bucket_utc, f.event_type, count(*) as events, "
           f"coalesce(sum(f.amount), 0) as revenue from {table('fact_events')} f where {clause} "
           f"group by 1, 2 order by 1, 2")
    return sql, params


def by_category_sql(filters: Filters) -> tuple[str, list[Any]]:
    clause, params = where(filters)
    sql = (f"select coalesce(p.category, '(none)') as category, count(*) as events from {table('fact_events')} f "
           f"left join {table('dim_products')} p on f.product_sk = p.product_sk where {clause} "
           f"group by 1 order by 2 desc, 1")
    return sql, params


def by_country_sql(filters: Filters) -> tuple[str, list[Any]]:
    clause, params = where(filters)
    sql = (f"select coalesce(u.country, '(unknown)') as country, count(*) as events from {table('fact_events')} f "
           f"left join {table('dim_users')} u on f.user_sk = u.user_sk where {clause} "
           f"group by 1 order by 2 desc, 1")
    return sql, params


def events_sql(filters: Filters, hour_start_utc: dt.datetime) -> tuple[str, list[Any]]:
    clause, params = where(filters)
    sql = (f"select f.event_id, f.event_ts, f.event_type, f.user_id, f.product_id, f.amount, f.currency "
           f"from {table('fact_events')} f where {clause} and f.event_ts >= ? and f.event_ts < ? "
           f"order by f.event_ts, f.event_id limit {EVENT_LIMIT}")
    return sql, [*params, hour_start_utc, hour_start_utc + dt.timedelta(hours=1)]


def options_sql() -> dict[str, str]:
    """The filter widgets' choices, from the marts too."""
    return {
        "event_types": f"select distinct event_type as value from {table('fact_events')} order by 1",
        "user_ids": f"select distinct user_id as value from {table('dim_users')} order by 1 limit 2000",
        "product_ids": f"select product_id as value from {table('dim_products')} order by 1 limit 2000",
        "bounds": f"select min(event_ts) as first_ts, max(event_ts) as last_ts from {table('fact_events')}",
    }


def all_sql(dialect: str, filters: Filters, hour_start_utc: dt.datetime) -> list[str]:
    """Every statement the page may run for these filters (the Property 32 test parses them)."""
    return [buckets_sql(dialect, filters)[0], by_category_sql(filters)[0], by_country_sql(filters)[0],
            events_sql(filters, hour_start_utc)[0], *options_sql().values()]


def to_zone(values: pd.Series, tz: str) -> pd.Series:
    """UTC instants (aware or naive-as-UTC) shown in the viewer's zone."""
    stamps = pd.to_datetime(values, utc=True)
    return stamps.dt.tz_convert(ZoneInfo(tz))


def localize_buckets(buckets: pd.DataFrame, tz: str) -> pd.DataFrame:
    """Add local_date and local_hour of each 15-minute bucket in the viewer's zone."""
    out = buckets.copy()
    if out.empty:
        return out.assign(local_date=pd.Series([], dtype="object"), local_hour=pd.Series([], dtype="int64"))
    local = to_zone(out["bucket_utc"], tz)
    return out.assign(local_date=local.dt.date, local_hour=local.dt.hour)


def daily(local: pd.DataFrame) -> pd.DataFrame:
    if local.empty:
        return pd.DataFrame({"local_date": [], "events": [], "revenue": []})
    grouped = local.groupby("local_date", as_index=False).agg(events=("events", "sum"), revenue=("revenue", "sum"))
    return grouped.sort_values("local_date").reset_index(drop=True)


def hourly(local: pd.DataFrame, day: dt.date | None) -> pd.DataFrame:
    """Events per local hour of `day`, all 24 hours present (zeros included) so the axis is stable."""
    hours = pd.DataFrame({"local_hour": list(range(24))})
    if local.empty or day is None:
        return hours.assign(events=0)
    chosen = local[local["local_date"] == day]
    counts = chosen.groupby("local_hour", as_index=False).agg(events=("events", "sum"))
    merged = hours.merge(counts, on="local_hour", how="left").fillna({"events": 0})
    merged["events"] = merged["events"].astype("int64")
    return merged


def by_type(local: pd.DataFrame) -> pd.DataFrame:
    if local.empty:
        return pd.DataFrame({"event_type": [], "events": []})
    grouped = local.groupby("event_type", as_index=False).agg(events=("events", "sum"))
    return grouped.sort_values(["events", "event_type"], ascending=[False, True]).reset_index(drop=True)


def busiest_hour(hours: pd.DataFrame) -> int:
    """The local hour with the most events (the earliest of a tie): where the drill-down opens."""
    counts = hours["events"].to_numpy()
    return int(hours["local_hour"].to_numpy()[counts.argmax()])


def hour_start_utc(day: dt.date, hour: int, tz: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), ZoneInfo(tz)).astimezone(dt.UTC)


def explore(warehouse: Warehouse, filters: Filters, day: dt.date | None = None, hour: int | None = None) -> Explored:
    """Run the page's queries; `day` (local) drills to hours, `hour` (local) drills to that hour's events."""
    sql, params = buckets_sql(warehouse.dialect, filters)
    local = localize_buckets(warehouse.query(sql, params), filters.tz)
    per_day = daily(local)
    if day is None and not per_day.empty:
        day = per_day["local_date"].iloc[-1]
    per_hour = hourly(local, day)
    if hour is None and day is not None and int(per_hour["events"].sum()) > 0:
        hour = busiest_hour(per_hour)
    events = pd.DataFrame()
    if day is not None and hour is not None:
        sql, params = events_sql(filters, hour_start_utc(day, hour, filters.tz))
        events = warehouse.query(sql, params)
        if not events.empty:
            events["event_ts"] = to_zone(events["event_ts"], filters.tz)
    sql, params = by_category_sql(filters)
    categories = warehouse.query(sql, params)
    sql, params = by_country_sql(filters)
    countries = warehouse.query(sql, params)
    return Explored(per_day, by_type(local), categories, countries, per_hour, events)
