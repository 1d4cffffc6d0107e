"""eventpipe's Streamlit dashboard: `streamlit run dashboard/app.py` (started by `eventpipe up`).

Pages: Pipeline (Prometheus's HTTP API, EventPipeline status on Kubernetes), Quality (the quality-results
table), Explore (the marts). Settings come from EVENTPIPE_* variables (eventpipe_dashboard.settings).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "views"

st.set_page_config(page_title="eventpipe", layout="wide")
navigation = st.navigation([
    st.Page(PAGES / "pipeline.py", title="Pipeline", url_path="pipeline", default=True),
    st.Page(PAGES / "quality.py", title="Quality", url_path="quality"),
    st.Page(PAGES / "explore.py", title="Explore", url_path="explore"),
])
navigation.run()
