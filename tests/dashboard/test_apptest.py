"""Each page under Streamlit's AppTest: empty states instead of tracebacks, and the widgets' effects on the data.

Real DuckDB files in a state folder like the local stack's; Prometheus "unreachable" is a real closed port.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers.marts_data import Event, Marts, create_marts, write_results
from tests.helpers.servers import free_port

PAGES = Path(__file__).resolve().parents[2] / "dashboard" / "views"
TIMEOUT = 60


def page(name: str) -> AppTest:
    return AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=TIMEOUT)


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def caption_starting(at: AppTest, prefix: str) -> str:
    found = [c for c in captions(at) if c.startswith(prefix)]
    assert found, f"no caption {prefix!r} in {captions(at)}"
    return found[0]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVENTPIPE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("EVENTPIPE_PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")
    return tmp_path


def shop_marts() -> Marts:
    start = dt.datetime(2026, 5, 4, 22, 10, tzinfo=dt.UTC)
    events = [Event(f"e{n}", ("purchase" if n % 3 == 0 else "page_view"), start + dt.timedelta(minutes=7 * n),
                    f"user-{n % 4}", f"prod-{n % 2}", 10.0 if n % 3 == 0 else None) for n in range(30)]
    return Marts(events, {"user-0": "DE", "user-1": "FR"}, {"prod-0": "books"})


def test_pipeline_page_says_prometheus_is_unreachable(state: Path) -> None:
    at = page("pipeline").run()
    assert not at.exception
    assert any("Prometheus is unreachable" in w.value for w in at.warning)


def test_quality_page_empty_state_then_scorecards(state: Path) -> None:
    at = page("quality").run()
    assert not at.exception
    assert any("No quality run yet" in i.value for i in at.info)
    run_at = dt.datetime(2026, 5, 4, 10, tzinfo=dt.UTC)
    docs = str(state / "quality" / "data_docs" / "local_site" / "validations" / "r1.html")
    write_results(state / "quality" / "results.duckdb", [
        ("r1", "staging", "stg_events", "expect_column_values_to_not_be_null", "event_id", True, "critical", "0", 0,
         run_at, docs, None),
        ("r1", "staging", "stg_events", "expect_column_values_to_be_unique", "event_id", False, "critical", "2", 2,
         run_at, docs, None),
    ])
    at = page("quality").run()
    assert not at.exception
    assert [m.label for m in at.metric] == ["Suite staging"]
    assert at.metric[0].value == "50%"
    assert any(f"]({Path(docs).as_uri()})" in m.value for m in at.markdown)


def test_explore_page_empty_state(state: Path) -> None:
    at = page("explore").run()
    assert not at.exception
    assert any("No data to explore yet" in i.value for i in at.info)


def test_explore_filters_and_time_zone_change_the_charts(state: Path) -> None:
    connection = duckdb.connect(str(state / "warehouse.duckdb"))
    create_marts(connection, shop_marts())
    connection.close()
    at = page("explore").run()
    assert not at.exception
    assert caption_starting(at, "Events shown:") == "Events shown: 30"

    at.multiselect(key="event_types").set_value(["purchase"]).run()
    assert not at.exception
    assert caption_starting(at, "Events shown:") == "Events shown: 10"
    assert caption_starting(at, "By type:") == "By type: purchase 10"

    at.multiselect(key="event_types").set_value([]).run()
    at.selectbox(key="tz_select").set_value("UTC").run()
    utc_hours = re.findall(r"(\d\d):00", caption_starting(at, "Events by hour:"))
    at.selectbox(key="tz_select").set_value("Asia/Tokyo").run()
    assert not at.exception
    tokyo_hours = re.findall(r"(\d\d):00", caption_starting(at, "Events by hour:"))
    # The last local day is drilled: in UTC 2026-05-05 (hours 00-01), in Tokyo (UTC+9) 2026-05-05 (07-10).
    assert utc_hours == ["00", "01"]
    assert tokyo_hours == ["07", "08", "09", "10"]
