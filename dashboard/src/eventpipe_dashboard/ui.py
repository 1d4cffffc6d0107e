"""What every page shares: the viewer's time zone (sidebar) and the settings."""

from __future__ import annotations

import zoneinfo

import streamlit as st

from eventpipe_dashboard import settings

ZONES = sorted(zoneinfo.available_timezones() | {"UTC"})


def browser_zone() -> str:
    """The viewer's browser time zone when Streamlit knows it and it is a real zone, else UTC."""
    try:
        zone = st.context.timezone
    except AttributeError:
        zone = None
    return zone if zone in ZONES else "UTC"


def viewer_zone() -> str:
    """The time zone the viewer chose in the sidebar (default: the browser's); times are stored in UTC."""
    if "viewer_tz" not in st.session_state:
        st.session_state["viewer_tz"] = browser_zone()
    chosen = st.sidebar.selectbox("Time zone", ZONES, index=ZONES.index(st.session_state["viewer_tz"]),
                                  key="tz_select", help="Times are stored in UTC and shown in this zone.")
    st.session_state["viewer_tz"] = chosen
    st.sidebar.caption(f"Showing times in {chosen}")
    return str(chosen)


def load_settings() -> settings.Settings:
    return settings.load()
