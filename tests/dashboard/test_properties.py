"""Properties 32-35 of the dashboard (../shared/design/PLAN.md, task 24), on real DuckDB with generated marts."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pytest
from eventpipe_dashboard import explore, quality
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.marts_data import Event, Marts, MemoryWarehouse, create_marts, write_results

ZONES = sorted(zoneinfo.available_timezones())
# Offsets that are not whole hours, and zones with DST changes inside the generated window (late March 2026).
ODD_ZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Adelaide", "Pacific/Chatham",
             "America/St_Johns", "Pacific/Kiritimati", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
EVENT_TYPES = ["page_view", "product_view", "add_to_cart", "purchase", "signup"]
USERS = [f"user-{n}" for n in range(6)]
PRODUCTS = [f"prod-{n}" for n in range(5)]
WINDOW_START = dt.datetime(2026, 3, 26, tzinfo=dt.UTC)
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

zones = st.one_of(st.sampled_from(ODD_ZONES), st.sampled_from(ZONES))


@st.composite
def marts(draw: Any) -> Marts:
    count = draw(st.integers(min_value=0, max_value=60))
    events = []
    for n in range(count):
        seconds = draw(st.integers(min_value=0, max_value=6 * 86400))
        events.append(Event(
            f"e{n:04d}", draw(st.sampled_from(EVENT_TYPES)), WINDOW_START + dt.timedelta(seconds=seconds),
            draw(st.one_of(st.none(), st.sampled_from(USERS))), draw(st.one_of(st.none(), st.sampled_from(PRODUCTS))),
            draw(st.one_of(st.none(), st.integers(min_value=1, max_value=400).map(lambda c: c / 2)))))
    countries = draw(st.dictionaries(st.sampled_from(USERS), st.sampled_from(["DE", "FR", "US", "IN"])))
    categories = draw(st.dictionaries(st.sampled_from(PRODUCTS), st.sampled_from(["books", "games", "toys"])))
    return Marts(events, countries, categories)


@st.composite
def filters(draw: Any) -> explore.Filters:
    tz = draw(zones)
    first = (WINDOW_START - dt.timedelta(days=1)).date()
    start = first + dt.timedelta(days=draw(st.integers(min_value=0, max_value=7)))
    end = start + dt.timedelta(days=draw(st.integers(min_value=0, max_value=8)))
    subset = st.lists(st.sampled_from(EVENT_TYPES), unique=True, max_size=3).map(tuple)
    return explore.Filters(start, end, tz, draw(subset),
                           draw(st.lists(st.sampled_from(USERS), unique=True, max_size=3).map(tuple)),
                           draw(st.lists(st.sampled_from(PRODUCTS), unique=True, max_size=2).map(tuple)))


def warehouse_of(data: Marts) -> MemoryWarehouse:
    connection = duckdb.connect()
    create_marts(connection, data)
    return MemoryWarehouse(connection)


def matching(data: Marts, f: explore.Filters) -> list[Event]:
    """The reference filter, in plain Python: local dates of the viewer's zone, then the value filters."""
    zone = zoneinfo.ZoneInfo(f.tz)
    return [e for e in data.events
            if f.start <= e.event_ts.astimezone(zone).date() <= f.end
            and (not f.event_types or e.event_type in f.event_types)
            and (not f.user_ids or e.user_id in f.user_ids)
            and (not f.product_ids or e.product_id in f.product_ids)]


def reference(data: Marts, f: explore.Filters) -> dict[str, Any]:
    zone = zoneinfo.ZoneInfo(f.tz)
    rows = matching(data, f)
    daily = Counter(e.event_ts.astimezone(zone).date() for e in rows)
    revenue: dict[dt.date, float] = defaultdict(float)
    for e in rows:
        revenue[e.event_ts.astimezone(zone).date()] += e.amount or 0.0
    day = max(daily) if daily else None
    hours = Counter(e.event_ts.astimezone(zone).hour for e in rows if e.event_ts.astimezone(zone).date() == day)
    return {
        "daily": {d: (daily[d], revenue[d]) for d in sorted(daily)},
        "by_type": dict(Counter(e.event_type for e in rows)),
        "by_category": dict(Counter(data.categories.get(e.product_id or "", "(none)") if e.product_id in
                                    data.categories else "(none)" for e in rows)),
        "by_country": dict(Counter(data.countries[e.user_id] if e.user_id in data.countries else "(unknown)"
                                   for e in rows)),
        "hourly": {h: hours.get(h, 0) for h in range(24)},
        "day": day,
    }


def shown(result: explore.Explored) -> dict[str, Any]:
    return {
        "daily": {r.local_date: (int(r.events), float(r.revenue)) for r in result.daily.itertuples()},
        "by_type": {r.event_type: int(r.events) for r in result.by_type.itertuples()},
        "by_category": {r.category: int(r.events) for r in result.by_category.itertuples()},
        "by_country": {r.country: int(r.events) for r in result.by_country.itertuples()},
        "hourly": {int(r.local_hour): int(r.events) for r in result.hourly.itertuples()},
    }


def assert_charts_match(result: explore.Explored, expected: dict[str, Any]) -> None:
    got = shown(result)
    assert got["daily"].keys() == expected["daily"].keys()
    for day, (count, revenue) in expected["daily"].items():
        assert got["daily"][day][0] == count
        assert got["daily"][day][1] == pytest.approx(revenue)
    for chart in ("by_type", "by_category", "by_country", "hourly"):
        assert got[chart] == expected[chart], chart


def tables_in(sql: str) -> set[str]:
    """The tables a statement reads, from DuckDB's parser (parameters and Snowflake's bucket function aside)."""
    parsable = sql.replace("?", "NULL").replace(explore.bucket_expr("snowflake", "f.event_ts"), "f.event_ts")
    return {name.split(" AS ")[0] for name in duckdb.get_table_names(parsable, qualified=True)}


@PROPERTY
@given(data=marts(), f=filters(), hour=st.integers(min_value=0, max_value=23))
def test_queries_use_the_dimensional_model_only(data: Marts, f: explore.Filters, hour: int) -> None:
    """Property 32: Dashboard queries use dimensional model. Every statement the Explore page runs, for any
    filters and either warehouse dialect, reads marts.fact_events / marts.dim_users / marts.dim_products and
    nothing else, and it runs on a database that holds only those three tables."""
    start = explore.hour_start_utc(f.start, hour, f.tz)
    allowed = {f"marts.{name}" for name in explore.MARTS}
    for dialect in ("duckdb", "snowflake"):
        for sql in explore.all_sql(dialect, f, start):
            names = tables_in(sql)
            assert names and names <= allowed, sql
    warehouse = warehouse_of(data)
    tables = warehouse.connection.execute(
        "select table_schema || '.' || table_name from information_schema.tables").fetchall()
    assert {t[0] for t in tables} == allowed
    explore.explore(warehouse, f, f.start, hour)
    for sql in explore.options_sql().values():
        warehouse.query(sql, [])


@PROPERTY
@given(data=marts(), first=filters(), second=filters())
def test_filters_update_every_chart(data: Marts, first: explore.Filters, second: explore.Filters) -> None:
    """Property 34: Filters update visualizations. For any marts and any two filter choices, every chart (per day,
    per type, per category, per country, per hour of the drilled day) shows exactly the events the filters
    select, so changing a filter changes each chart whose selected events change."""
    warehouse = warehouse_of(data)
    results = []
    for f in (first, second):
        expected = reference(data, f)
        result = explore.explore(warehouse, f)
        assert_charts_match(result, expected)
        results.append((shown(result), expected))
    (got_a, want_a), (got_b, want_b) = results
    for chart in ("by_type", "by_category", "by_country"):
        if want_a[chart] != want_b[chart]:
            assert got_a[chart] != got_b[chart], chart


@PROPERTY
@given(data=marts(), tz=zones)
def test_time_series_shows_the_viewers_time_zone(data: Marts, tz: str) -> None:
    """Property 35: Time series shows user timezone. Events are stored in UTC; for any time zone the per-day and
    per-hour series count each event at its local date and hour in that zone (offsets of 30 and 45 minutes and
    DST changes included), and the drilled events carry their instant in that zone."""
    zone = zoneinfo.ZoneInfo(tz)
    warehouse = warehouse_of(data)
    everything = explore.Filters(dt.date(2026, 3, 24), dt.date(2026, 4, 3), tz)
    result = explore.explore(warehouse, everything)
    local_days = Counter(e.event_ts.astimezone(zone).date() for e in data.events)
    assert {r.local_date: int(r.events) for r in result.daily.itertuples()} == dict(local_days)
    for day in local_days:
        drilled = explore.explore(warehouse, everything, day)
        local = [e.event_ts.astimezone(zone) for e in data.events]
        want = Counter(moment.hour for moment in local if moment.date() == day)
        assert {int(r.local_hour): int(r.events) for r in drilled.hourly.itertuples() if r.events} == dict(want)
    if not result.events.empty:
        by_id = {e.event_id: e.event_ts for e in data.events}
        for row in result.events.itertuples():
            assert str(row.event_ts.tzinfo) == tz
            assert row.event_ts.to_pydatetime() == by_id[row.event_id]
            assert row.event_ts.to_pydatetime().utcoffset() == by_id[row.event_id].astimezone(zone).utcoffset()


SUITES = ["staging", "marts", "rejected"]


@st.composite
def quality_runs(draw: Any) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for n in range(draw(st.integers(min_value=1, max_value=8))):
        suite = draw(st.sampled_from(SUITES))
        run_at = WINDOW_START + dt.timedelta(minutes=draw(st.integers(min_value=0, max_value=10_000)))
        run_id = f"{suite}-{n:03d}"
        docs = f"/tmp/state/quality/data_docs/local_site/validations/{run_id}.html"
        expectations = draw(st.lists(st.tuples(
            st.sampled_from(["expect_column_values_to_not_be_null", "expect_column_values_to_be_unique",
                             "expect_table_row_count_to_be_between", "expect_column_values_to_be_in_set"]),
            st.sampled_from(["event_id", "user_id", None]), st.booleans(),
            st.sampled_from(["critical", "warning"])), min_size=1, max_size=6, unique_by=lambda t: (t[0], t[1])))
        for expectation, column, success, severity in expectations:
            rows.append((run_id, suite, f"{suite}_asset", expectation, column, success, severity, "0",
                         0 if success else 3, run_at, docs, docs.replace(".html", ".json")))
    return rows


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=quality_runs(), published=st.booleans())
def test_dashboard_displays_quality_metrics(rows: list[tuple[Any, ...]], published: bool,
                                            tmp_path: Path) -> None:
    """Property 33: Dashboard displays quality metrics. For any runs in the quality-results table, each suite's
    scorecard is its latest run's pass rate and failure counts, every run appears in the trend with its own pass
    rate, and each run links to its own Data Docs page (published site or local file)."""
    db = tmp_path / f"results-{abs(hash(tuple(rows)))}.duckdb"
    db.unlink(missing_ok=True)
    write_results(db, rows)
    results = quality.read_results(db)
    base = "https://docs.example.com/quality" if published else ""
    by_run: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        by_run[row[0]].append(row)
    trend = quality.runs(results, base)
    assert set(trend["run_id"]) == set(by_run)
    for run in trend.itertuples():
        own = by_run[run.run_id]
        assert run.pass_rate == pytest.approx(sum(r[5] for r in own) / len(own))
        assert run.failed == sum(not r[5] for r in own)
        docs_path = own[0][10]
        want = f"{base}/local_site/validations/{run.run_id}.html" if published else Path(docs_path).as_uri()
        assert run.docs == want
    cards = quality.scorecards(results, base)
    assert set(cards["suite"]) == {r[1] for r in rows}
    for card in cards.itertuples():
        latest = max((r for r in rows if r[1] == card.suite), key=lambda r: (r[9], r[0]))[0]
        own = by_run[latest]
        assert card.run_id == latest
        assert card.pass_rate == pytest.approx(sum(r[5] for r in own) / len(own))
        assert card.critical_failed == sum((not r[5]) and r[6] == "critical" for r in own)
        table = quality.expectations(results, card.suite)
        assert {(r.expectation, r.column_name or None, bool(r.last_success)) for r in table.itertuples()} == \
            {(r[3], r[4], r[5]) for r in own}
