"""Explore: the marts (fact_events, dim_users, dim_products) with filters that change every chart, and a
drill-down from day to hour to events. Times are stored in UTC and shown in the viewer's time zone."""

from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
import streamlit as st
from eventpipe_dashboard import explore, ui
from eventpipe_dashboard.warehouse import DuckDBWarehouse, SnowflakeWarehouse, WarehouseUnavailableError

settings = ui.load_settings()
tz = ui.viewer_zone()
st.title("Explore")

warehouse: explore.Warehouse
if settings.warehouse == "snowflake":
    warehouse = SnowflakeWarehouse(settings.snowflake())
else:
    warehouse = DuckDBWarehouse(settings.duckdb_path)

try:
    choices = {name: warehouse.query(sql, []) for name, sql in explore.options_sql().items()}
except WarehouseUnavailableError as exc:
    st.info(f"No data to explore yet. {exc}")
    st.stop()

bounds = choices["bounds"]
if bounds.empty or pd.isna(bounds["first_ts"].iloc[0]):
    st.info("No events in fact_events yet: send some traffic (`eventpipe send --count 5000 --wait`).")
    st.stop()
first = explore.to_zone(bounds["first_ts"], tz).iloc[0].date()
last = explore.to_zone(bounds["last_ts"], tz).iloc[0].date()

with st.container(border=True):
    left, middle, right, far = st.columns(4)
    # Keyed by the time zone: the data's first and last local dates move with it (an event at 15:00 UTC is the
    # next day in Tokyo), and a widget keyed by name alone would keep the other zone's dates.
    picked = left.date_input("Dates", value=(first, last), key=f"dates-{tz}")
    event_types = middle.multiselect("Event types", list(choices["event_types"]["value"]), key="event_types")
    user_ids = right.multiselect("Users", list(choices["user_ids"]["value"]), key="users")
    product_ids = far.multiselect("Products", list(choices["product_ids"]["value"]), key="products")

dates = list(picked) if isinstance(picked, (tuple, list)) else [picked]
start: dt.date = dates[0] if dates else first
end: dt.date = dates[-1] if dates else last
filters = explore.Filters(start, end, tz, tuple(event_types), tuple(user_ids), tuple(product_ids))

try:
    base = explore.explore(warehouse, filters)
except WarehouseUnavailableError as exc:
    st.warning(f"The warehouse is busy, try again in a moment. {exc}")
    st.stop()

if base.daily.empty:
    st.info("No events match these filters.")
    st.stop()

total = int(base.daily["events"].sum())
st.caption(f"Events shown: {total:,}")

one, two = st.columns(2)
with one:
    st.altair_chart(alt.Chart(base.daily.assign(local_date=base.daily["local_date"].astype(str)),
                              title="Events per day").mark_bar().encode(
        x=alt.X("local_date:O", title=f"day ({tz})"), y=alt.Y("events:Q")), use_container_width=True)
    st.altair_chart(alt.Chart(base.by_category, title="Events per product category").mark_bar().encode(
        x=alt.X("events:Q"), y=alt.Y("category:N", sort="-x")), use_container_width=True)
with two:
    st.altair_chart(alt.Chart(base.by_type, title="Events per type").mark_bar().encode(
        x=alt.X("events:Q"), y=alt.Y("event_type:N", sort="-x")), use_container_width=True)
    st.altair_chart(alt.Chart(base.by_country, title="Events per user country").mark_bar().encode(
        x=alt.X("events:Q"), y=alt.Y("country:N", sort="-x")), use_container_width=True)
st.caption("By type: " + " · ".join(f"{r.event_type} {r.events:,}" for r in base.by_type.itertuples()))

st.subheader("Drill down")
days = list(base.daily["local_date"])
day = st.selectbox("Day", days, index=len(days) - 1, format_func=lambda d: f"{d:%Y-%m-%d}", key="day")
hours = explore.hourly(explore.localize_buckets(warehouse.query(*explore.buckets_sql(warehouse.dialect, filters)),
                                                tz), day)
st.altair_chart(alt.Chart(hours, title=f"Events per hour of {day} ({tz})").mark_bar().encode(
    x=alt.X("local_hour:O", title=f"hour ({tz})"), y=alt.Y("events:Q")), use_container_width=True)
busy = [row for row in hours.to_dict("records") if row["events"] > 0]
st.caption("Events by hour: " + " · ".join(f"{int(row['local_hour']):02d}:00 {int(row['events']):,}"
                                           for row in busy))
hour_options = [int(row["local_hour"]) for row in busy]
if hour_options:
    busiest = explore.busiest_hour(hours)
    hour = st.selectbox("Hour", hour_options, index=hour_options.index(busiest),
                        format_func=lambda h: f"{h:02d}:00", key="hour")
    drilled = explore.explore(warehouse, filters, day, int(hour))
    st.caption(f"First {explore.EVENT_LIMIT} events of {day} {int(hour):02d}:00 ({tz})")
    events = drilled.events.assign(event_ts=drilled.events["event_ts"].dt.strftime("%Y-%m-%d %H:%M:%S %Z"))
    st.dataframe(events, hide_index=True)
else:
    st.info("No events on this day.")
