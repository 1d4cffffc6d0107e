"""Quality: scorecards and trends per suite and expectation from the quality-results table, with Data Docs."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st
from eventpipe_dashboard import quality, ui

settings = ui.load_settings()
tz = ui.viewer_zone()
st.title("Quality")

try:
    results = quality.read_results(settings.quality_db)
except quality.ResultsUnavailableError as exc:
    st.warning(f"The quality results cannot be read right now: {exc}")
    st.stop()

if results.empty:
    st.info("No quality run yet: the Great Expectations suites run after dbt builds the models "
            f"(results are kept in {settings.quality_db}).")
    st.stop()

cards = quality.scorecards(results, settings.data_docs_url)
totals = quality.totals(results)
st.caption(f"{totals.suites} suites, {totals.runs} runs, {totals.failing_suites} failing on a critical expectation")
columns = st.columns(max(len(cards), 1))
for column, card in zip(columns, cards.to_dict("records"), strict=False):
    ran = pd.Timestamp(card["run_at"]).tz_convert(tz)
    column.metric(f"Suite {card['suite']}", f"{card['pass_rate']:.0%}",
                  delta=f"{card['failed']} failed, {card['critical_failed']} critical", delta_color="off")
    column.caption(f"Last run {ran:%Y-%m-%d %H:%M %Z}")
    if card["docs"]:
        column.markdown(f"[Data Docs of run {card['run_id']}]({card['docs']})")

every = quality.runs(results, settings.data_docs_url)
trend = every.assign(run_at=every["run_at"].dt.tz_convert(tz).dt.tz_localize(None))
st.subheader("Pass rate per run")
st.altair_chart(alt.Chart(trend).mark_line(point=True).encode(
    x=alt.X("run_at:T", title=f"run time ({tz})"), y=alt.Y("pass_rate:Q", title="pass rate",
                                                           scale=alt.Scale(domain=[0, 1])),
    color="suite:N", tooltip=["suite", "run_id", "passed", "failed", "critical_failed"]), use_container_width=True)

st.subheader("Runs")
st.dataframe(trend.sort_values("run_at", ascending=False), hide_index=True,
             column_config={"docs": st.column_config.LinkColumn("Data Docs", display_text="open"),
                            "pass_rate": st.column_config.NumberColumn("pass rate", format="percent")})

suite = st.selectbox("Expectations of suite", list(cards["suite"]))
if suite is not None:
    st.dataframe(quality.expectations(results, str(suite)), hide_index=True,
                 column_config={"pass_rate": st.column_config.NumberColumn("pass rate over runs",
                                                                           format="percent")})
