"""The dashboard in a real browser (Debian's Chromium, headless, driven by selenium) against `streamlit run`
started by `eventpipe up`, with the stack's real data. Screenshots of each page go to the test's temporary
folder (the path is printed). The pipeline test runs last: it sends traffic of its own."""

from __future__ import annotations

import datetime as dt
import re
import time
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from eventpipe_dashboard import prometheus as prom
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.helpers.local_stack import LocalStack

WAIT = 120


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2400"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    yield driver
    driver.quit()


def wait_for(driver: WebDriver, what: str, condition: Callable[[WebDriver], object]) -> None:
    try:
        WebDriverWait(driver, WAIT, poll_frequency=0.5).until(condition)
    except Exception as exc:
        page = driver.find_element(By.TAG_NAME, "body").text[:3000]
        raise AssertionError(f"timed out waiting for {what}; page text:\n{page}") from exc


def no_exception(driver: WebDriver) -> None:
    errors = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not errors, errors[0].text


def captions(driver: WebDriver) -> list[str]:
    return [c.text for c in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stCaptionContainer"]')]


def caption(driver: WebDriver, prefix: str) -> str | None:
    return next((c for c in captions(driver) if c.startswith(prefix)), None)


def settled_caption(driver: WebDriver, prefix: str, differs_from: str | None = None) -> str:
    """The caption once the page finished running (and, when given, once it changed)."""
    def ready(d: WebDriver) -> bool:
        running = d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        text = caption(d, prefix)
        return not running and text is not None and text != differs_from
    wait_for(driver, f"caption {prefix!r}", ready)
    text = caption(driver, prefix)
    assert text is not None
    return text


def widget(driver: WebDriver, testid: str, label: str) -> WebElement:
    for element in driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'):
        if element.text.splitlines()[:1] == [label] or element.text.startswith(label):
            return element
    raise AssertionError(f"no {testid} labelled {label!r}")


def choose(driver: WebDriver, testid: str, label: str, value: str) -> None:
    """Type into a select / multiselect and pick the matching option, as a user does."""
    box = widget(driver, testid, label).find_element(By.CSS_SELECTOR, "input")
    box.click()
    box.send_keys(value)
    time.sleep(0.5)
    box.send_keys(Keys.ENTER)
    box.send_keys(Keys.ESCAPE)


def hours_of(text: str) -> list[int]:
    return [int(h) for h in re.findall(r"(\d\d):00", text)]


def expected_hours(state_dir: Path, tz: str) -> list[int]:
    """Hours (viewer's zone) of the last local day's events, computed here from the marts' UTC timestamps."""
    for _ in range(60):
        try:
            connection = duckdb.connect(str(state_dir / "warehouse.duckdb"), read_only=True)
        except duckdb.IOException:
            time.sleep(0.5)
            continue
        try:
            stamps = [row[0] for row in connection.execute(
                "select epoch_ms(event_ts) from marts.fact_events").fetchall()]
        finally:
            connection.close()
        zone = zoneinfo.ZoneInfo(tz)
        local = [dt.datetime.fromtimestamp(ms / 1000, dt.UTC).astimezone(zone) for ms in stamps]
        last_day = max(moment.date() for moment in local)
        return sorted({moment.hour for moment in local if moment.date() == last_day})
    raise AssertionError("warehouse.duckdb stayed locked")


def test_quality_page_shows_scorecards_and_data_docs(live_stack: LocalStack, browser: WebDriver, shots: Path) -> None:
    browser.get(f"{live_stack.dashboard}/quality")
    wait_for(browser, "a suite scorecard",
             lambda d: any(m.text.startswith("Suite ") for m in d.find_elements(
                 By.CSS_SELECTOR, '[data-testid="stMetric"]')))
    no_exception(browser)
    labels = {m.text.splitlines()[0] for m in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')}
    assert {"Suite staging", "Suite marts"} <= labels
    links = [a.get_attribute("href") or "" for a in browser.find_elements(By.PARTIAL_LINK_TEXT, "Data Docs of run")]
    assert links and all(link.startswith("file://") and link.endswith(".html") for link in links)
    browser.save_screenshot(str(shots / "quality.png"))


def test_explore_time_zone_moves_the_hour_axis_and_filters_change_charts(
        live_stack: LocalStack, browser: WebDriver, shots: Path) -> None:
    browser.get(f"{live_stack.dashboard}/explore")
    shown = settled_caption(browser, "Events shown:")
    no_exception(browser)
    choose(browser, "stSelectbox", "Time zone", "UTC")
    wait_for(browser, "UTC in the sidebar", lambda d: "Showing times in UTC" in d.page_source)
    utc_caption = settled_caption(browser, "Events by hour:")
    utc = hours_of(utc_caption)
    assert utc == expected_hours(live_stack.state_dir, "UTC")
    browser.save_screenshot(str(shots / "explore-utc.png"))

    choose(browser, "stSelectbox", "Time zone", "Asia/Tokyo")
    wait_for(browser, "Tokyo in the sidebar", lambda d: "Showing times in Asia/Tokyo" in d.page_source)
    # The sidebar updates first; the hour axis once the page's rerun reaches it (UTC+9 moves every hour).
    tokyo = hours_of(settled_caption(browser, "Events by hour:", differs_from=utc_caption))
    assert tokyo == expected_hours(live_stack.state_dir, "Asia/Tokyo")
    assert tokyo != utc
    no_exception(browser)
    browser.save_screenshot(str(shots / "explore-tokyo.png"))

    by_type = settled_caption(browser, "By type:")
    assert "purchase" in by_type and "page_view" in by_type
    choose(browser, "stMultiSelect", "Event types", "purchase")
    filtered = settled_caption(browser, "By type:", differs_from=by_type)
    assert re.fullmatch(r"By type: purchase [\d,]+", filtered), filtered
    assert settled_caption(browser, "Events shown:") != shown
    no_exception(browser)
    browser.save_screenshot(str(shots / "explore-purchases.png"))


def test_pipeline_throughput_and_job_states_equal_prometheus(live_stack: LocalStack, browser: WebDriver,
                                                             shots: Path) -> None:
    # Traffic goes on while the page loads (a slow machine may take longer than the rate's one-minute window).
    with live_stack.traffic(count=30_000, rate=150):
        # The page evaluates its queries SETTLE_SECONDS in the past: wait until that moment already had traffic.
        wait_for(browser, "throughput above zero at the page's evaluation time", lambda _: any(
            float(r["value"][1]) > 0 for r in live_stack.query(prom.THROUGHPUT_IN, prom.settled_time())))
        browser.get(f"{live_stack.dashboard}/")   # Pipeline is the default page: its URL is the root
        assert not browser.find_elements(By.XPATH, "//*[contains(text(), 'Page not found')]")
        stamp = settled_caption(browser, "As of ")
        no_exception(browser)
        at = float(re.search(r"Prometheus evaluation time (\d+)", stamp).group(1))  # type: ignore[union-attr]
        metric = widget(browser, "stMetric", "Events in / s")
        shown = metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text
        jobs_shown = settled_caption(browser, "Jobs: ")
    jobs = prom.job_states(live_stack.query(prom.JOBS_BY_STATE, at))
    assert jobs is not None and jobs["committed"] > 0, jobs
    assert jobs_shown == prom.format_job_states(jobs)
    answer = live_stack.query(prom.THROUGHPUT_IN, at)
    assert answer, "Prometheus has no throughput series"
    value = float(answer[0]["value"][1])
    assert value > 0
    assert shown == prom.format_rate(value)
    firing = [row.text for row in browser.find_elements(By.XPATH, "//h3[contains(., 'Firing alerts')]")]
    assert firing and "No alert is firing." in browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(shots / "pipeline.png"))
