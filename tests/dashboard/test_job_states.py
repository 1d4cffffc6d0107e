"""The Pipeline page's jobs by state under Streamlit's AppTest, from a real Prometheus scraping the consumer's real
job-state gauge (tests/helpers/job_states_exporter.py: a real SQLite job store, in the services virtualenv)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventpipe_dashboard import prometheus as prom
from streamlit.testing.v1 import AppTest

from tests.helpers.servers import REPO_ROOT, ServerProcess, free_port, start_process

PAGES = REPO_ROOT / "dashboard" / "views"
SERVICES_PYTHON = REPO_ROOT / ".venvs" / "services" / "bin" / "python"
STATES = {"accepted": 1, "published": 2, "committed": 3, "failed": 1}


def prometheus_query(url: str, promql: str, at: float) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:  # refused, or 503 (HTTPError is an OSError) while the storage loads
        return False


@pytest.fixture(scope="module")
def prometheus_with_jobs() -> Iterator[str]:
    """Prometheus (Debian's binary, scraping every second) with the job-state gauge stored since at least the
    page's evaluation time (prom.settled_time, SETTLE_SECONDS in the past)."""
    prometheus_bin = shutil.which("prometheus")
    assert prometheus_bin, "prometheus is not installed (scripts/tools.sh prometheus)"
    workdir = Path(tempfile.mkdtemp(prefix="eventpipe-jobstates-"))
    exporter_port, prometheus_port = free_port(), free_port()
    counts = [arg for state, n in STATES.items() for arg in (f"--{state}", str(n))]
    servers: list[ServerProcess] = []
    try:
        servers.append(start_process("job-states", [
            str(SERVICES_PYTHON), "-m", "tests.helpers.job_states_exporter",
            "--port", str(exporter_port), "--db", str(workdir / "jobs.db"), *counts], exporter_port, timeout=60,
            cwd=REPO_ROOT))
        config = workdir / "prometheus.yml"
        config.write_text(json.dumps({"global": {"scrape_interval": "1s"}, "scrape_configs": [
            {"job_name": "consumer", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}]}))
        servers.append(start_process("prometheus", [
            prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}"], prometheus_port, timeout=60))
        url = f"http://127.0.0.1:{prometheus_port}"
        deadline = time.monotonic() + 120
        while not ready(url):  # the port opens before the storage is ready (queries answer 503 until then)
            assert time.monotonic() < deadline, f"Prometheus never got ready:\n{servers[1].log_tail()}"
            time.sleep(0.5)
        while not prometheus_query(url, prom.JOBS_BY_STATE, prom.settled_time()):
            assert time.monotonic() < deadline, f"no job states in Prometheus:\n{servers[0].log_tail()}"
            time.sleep(1)
        yield url
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_pipeline_page_shows_jobs_by_state(prometheus_with_jobs: str, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("EVENTPIPE_PROMETHEUS_URL", prometheus_with_jobs)
    monkeypatch.setenv("EVENTPIPE_STATE_DIR", str(tmp_path))
    at = AppTest.from_file(str(PAGES / "pipeline.py"), default_timeout=60).run()
    assert not at.exception
    shown = {m.label.removeprefix("Jobs "): m.value for m in at.metric if m.label.startswith("Jobs ")}
    assert shown == {state: str(n) for state, n in STATES.items()}
    assert "Jobs: accepted 1, published 2, committed 3, failed 1" in [c.value for c in at.caption]


def test_job_states_from_prometheus_answers() -> None:
    """The pure part: lifecycle order, a missing state is 0, no series is None (the page's empty state)."""
    answer = [{"metric": {"state": "committed"}, "value": [0, "12"]},
              {"metric": {"state": "accepted"}, "value": [0, "3"]}]
    assert prom.job_states(answer) == {"accepted": 3, "published": 0, "committed": 12, "failed": 0}
    assert prom.job_states([]) is None
    assert prom.format_job_states({"accepted": 1200, "failed": 0}) == "Jobs: accepted 1,200, failed 0"
