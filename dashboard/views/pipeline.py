"""Pipeline: throughput, latency, lag per shard, commits and job states from Prometheus; EventPipelines on
Kubernetes."""

from __future__ import annotations

import time

import altair as alt
import pandas as pd
import streamlit as st
from eventpipe_dashboard import kube, ui
from eventpipe_dashboard import prometheus as prom

settings = ui.load_settings()
tz = ui.viewer_zone()
st.title("Pipeline")
client = prom.Prometheus(settings.prometheus_url)


def line_chart(frame: pd.DataFrame, title: str, unit: str) -> None:
    if frame.empty:
        st.info(f"{title}: no data yet")
        return
    shown = frame.assign(time=frame["time"].dt.tz_convert(tz).dt.tz_localize(None))
    chart = alt.Chart(shown, title=title).mark_line().encode(
        x=alt.X("time:T", title=f"time ({tz})"), y=alt.Y("value:Q", title=unit), color=alt.Color("series:N"))
    st.altair_chart(chart, use_container_width=True)


at = prom.settled_time()
try:
    throughput_in = client.scalar(prom.THROUGHPUT_IN, at)
    throughput_out = client.scalar(prom.THROUGHPUT_OUT, at)
    publish_p95 = client.scalar(prom.PUBLISH_P95, at)
    commit_p95 = client.scalar(prom.COMMIT_P95, at)
except prom.PrometheusUnavailableError as exc:
    st.warning(f"Prometheus is unreachable, so there are no pipeline metrics to show. {exc}")
    st.caption(f"Prometheus URL: {settings.prometheus_url} (EVENTPIPE_PROMETHEUS_URL). "
               "Start the local stack with `eventpipe up`.")
else:
    local = pd.Timestamp(at, unit="s", tz="UTC").tz_convert(tz)
    cols = st.columns(4)
    cols[0].metric("Events in / s", prom.format_rate(throughput_in), help=prom.THROUGHPUT_IN)
    cols[1].metric("Events committed / s", prom.format_rate(throughput_out), help=prom.THROUGHPUT_OUT)
    cols[2].metric("Publish latency p95 (s)", prom.format_rate(publish_p95), help=prom.PUBLISH_P95)
    cols[3].metric("Commit latency p95 (s)", prom.format_rate(commit_p95), help=prom.COMMIT_P95)
    st.caption(f"As of {local:%Y-%m-%d %H:%M:%S %Z} (Prometheus evaluation time {at:.0f})")

    end = time.time()
    start = end - 3600
    left, right = st.columns(2)
    with left:
        throughput = pd.concat([
            client.range(prom.THROUGHPUT_IN, start, end, 15).assign(series="accepted by ingest"),
            client.range(prom.THROUGHPUT_OUT, start, end, 15).assign(series="committed to raw_events")])
        line_chart(throughput, "Throughput (events/s)", "events/s")
        line_chart(client.range(prom.PUBLISH_P95, start, end, 15), "Publish latency p95", "seconds")
    with right:
        line_chart(client.range(prom.LAG_PER_SHARD, start, end, 15), "Consumer lag per shard", "seconds")
        line_chart(client.range(prom.COMMITS_PER_MINUTE, start, end, 15), "Iceberg commits per minute",
                   "commits/min")

    totals = {name: client.scalar(query, at) for name, query in prom.TOTALS.items()}
    st.subheader("Totals since the services started")
    st.table(pd.DataFrame({"count": [prom.format_rate(v) for v in totals.values()]}, index=list(totals)))

    st.subheader("Jobs by state")
    states = prom.job_states(client.query(prom.JOBS_BY_STATE, at))
    if states is None:
        st.info("Jobs by state: no data yet (each consumer exports eventpipe_consumer_jobs, read from the job store).")
    else:
        for col, (state, count) in zip(st.columns(len(states)), states.items(), strict=True):
            col.metric(f"Jobs {state}", f"{count:,}", help=prom.JOBS_BY_STATE)
        st.caption(prom.format_job_states(states))
        line_chart(client.range(prom.JOBS_BY_STATE, start, end, 15), "Jobs per state", "jobs")

    st.subheader("Scrape targets")
    targets = client.query(prom.UP, at)
    if targets:
        st.table(pd.DataFrame([{"job": t["metric"].get("job"), "instance": t["metric"].get("instance"),
                                "up": "yes" if t["value"][1] == "1" else "no"} for t in targets]))
    else:
        st.info("Prometheus scrapes nothing yet.")

    st.subheader("Firing alerts")
    alerts = client.query(prom.ALERTS, at)
    if alerts:
        st.table(pd.DataFrame([{"alert": a["metric"].get("alertname"), "severity": a["metric"].get("severity"),
                                "labels": prom.series_name(a["metric"])} for a in alerts]))
    else:
        st.success("No alert is firing.")

if settings.kubernetes:
    st.subheader("EventPipelines")
    try:
        pipelines = kube.list_pipelines()
    except kube.KubernetesUnavailableError as exc:
        st.warning(str(exc))
    else:
        if pipelines.empty:
            st.info("No EventPipeline in the cluster.")
        else:
            st.dataframe(pipelines, hide_index=True)
