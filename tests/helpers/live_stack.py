"""One local stack (`eventpipe up`, with Prometheus and the dashboard) for the browser and Grafana tests.

Every port is free and chosen here; the stack's processes are stopped through `up` (SIGTERM, by PID).
The services run in .venvs/services, dbt + GX in .venvs/analytics, the dashboard in this virtualenv.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.servers import REPO_ROOT, free_port, stack_env, stack_logs

EVENTPIPE = REPO_ROOT / ".venvs" / "services" / "bin" / "eventpipe"


@dataclass
class LiveStack:
    state_dir: Path
    ports: dict[str, int]
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.ports['dashboard']}"

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([str(EVENTPIPE), *args, "--state-dir", str(self.state_dir)], capture_output=True,
                             text=True, timeout=timeout, env=dashboard_stack_env())
        if out.returncode != 0:
            raise RuntimeError(f"eventpipe {' '.join(args)} failed: {out.stdout}{out.stderr}\n{self.logs()}")
        return out

    @contextmanager
    def traffic(self, count: int, rate: int) -> Iterator[None]:
        """`eventpipe send` running in the background for the block (bounded by count and rate), stopped by PID
        after it: a rate over the last minute stays above zero however long the page takes to load."""
        proc = subprocess.Popen([str(EVENTPIPE), "send", "--count", str(count), "--rate", str(rate),
                                 "--state-dir", str(self.state_dir)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=dashboard_stack_env())
        try:
            yield
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        with urllib.request.urlopen(f"{self.prometheus}/api/v1/query?{urllib.parse.urlencode(params)}",
                                    timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def logs(self, lines: int = 25) -> str:
        return stack_logs(self.log_path, self.state_dir, lines)

    def wait_for_series(self, promql: str, timeout: float = 180) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(promql)
            if result:
                return result
            time.sleep(2)
        raise AssertionError(f"Prometheus has no series for {promql!r} after {timeout}s\n{self.logs()}")


def dashboard_stack_env() -> dict[str, str]:
    """The stack's environment, with this virtualenv's Python running the dashboard."""
    return stack_env(EVENTPIPE_DASHBOARD_PYTHON=sys.executable)


def start(root: Path) -> LiveStack:
    state = root / "state"
    state.mkdir(parents=True)
    names = ("ingest", "kinesis", "metrics", "prometheus", "dashboard", "transform", "ingest-metrics")
    ports = {name: free_port() for name in names}
    log_path = root / "up.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(EVENTPIPE), "up", "--state-dir", str(state), "--ingest-port", str(ports["ingest"]),
             "--kinesis-port", str(ports["kinesis"]), "--metrics-port", str(ports["metrics"]),
             "--prometheus-port", str(ports["prometheus"]), "--dashboard-port", str(ports["dashboard"]),
             "--transform-metrics-port", str(ports["transform"]), "--ingest-metrics-port", str(ports["ingest-metrics"]),
             "--no-persist-stream",
             "--commit-interval", "1", "--transform-interval", "1", "--transform-settle", "3"],
            stdout=log, stderr=subprocess.STDOUT, env=dashboard_stack_env(), start_new_session=True)
    stack = LiveStack(state, ports, proc, log_path)
    try:
        stack.cli("wait", "--timeout", "240", timeout=260)
        stack.cli("send", "--count", "3000", "--duplicates", "0.02", "--invalid", "0.02", "--wait", timeout=300)
        stack.cli("wait", "--modelled", "--timeout", "300", timeout=320)
        # The quality gauges come from the transform loop after GX ran; recording rules every 30 s.
        stack.wait_for_series("eventpipe_quality_suite_success")
        stack.wait_for_series("eventpipe:consumer_lag_seconds:max")
    except BaseException:
        stop(stack)
        raise
    return stack


def stop(stack: LiveStack, timeout: float = 60) -> None:
    """SIGTERM `up` (what Ctrl-C does): it stops its children by PID, in reverse start order."""
    if stack.proc.poll() is None:
        stack.proc.send_signal(signal.SIGTERM)
        try:
            stack.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(stack.proc.pid, signal.SIGKILL)
            stack.proc.wait(timeout=10)
