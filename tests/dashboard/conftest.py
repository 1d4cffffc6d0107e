"""The dashboard's tests run in its own virtualenv (.venvs/dashboard); the package is dashboard/src.

`live_stack` is one `eventpipe up` (with Prometheus and the dashboard) for the whole session, started only by
the tests that need it (browser, Grafana PromQL); it is built in tests/helpers/live_stack.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.live_stack import LiveStack, start, stop


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    stack = start(tmp_path_factory.mktemp("stack"))
    yield stack
    stop(stack)
