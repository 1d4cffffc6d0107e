"""The dashboard's tests run in its own virtualenv (.venvs/dashboard); the package is dashboard/src.

`live_stack` is one `eventpipe up` (with Prometheus and the dashboard) for the whole session, started only by
the tests that need it (browser, Grafana PromQL), with events sent, modelled and scored before the first test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.helpers.local_stack import LocalStack, start, stop
from tests.helpers.servers import stack_env


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # The dashboard runs in this virtualenv's Python; the stream in memory (nothing to keep after the session).
    env = stack_env(EVENTPIPE_DASHBOARD_PYTHON=sys.executable)
    stack = start(tmp_path_factory.mktemp("stack") / "state", env, monitoring=True, options=["--no-persist-stream"],
                  wait_timeout=240)
    try:
        stack.cli("send", "--count", "3000", "--duplicates", "0.02", "--invalid", "0.02", "--wait", timeout=300,
                  check=True)
        stack.cli("wait", "--modelled", "--timeout", "300", timeout=320, check=True)
        # The quality gauges come from the transform loop after GX ran; recording rules every 30 s.
        stack.wait_for_series("eventpipe_quality_suite_success")
        stack.wait_for_series("eventpipe:consumer_lag_seconds:max")
    except BaseException:
        stop(stack)
        raise
    yield stack
    stop(stack)
