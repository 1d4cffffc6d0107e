"""One local stack (`eventpipe up`) as a subprocess on free ports, for the tests that need all of it: the end-to-end
tests (no monitoring) and the dashboard's browser and Grafana tests (with Prometheus and the dashboard).

Every port is free and chosen here; the stack is stopped as Ctrl-C would (SIGTERM to `up`, which stops its
children by PID, in reverse start order).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.servers import REPO_ROOT, free_port, stack_logs

EVENTPIPE = REPO_ROOT / ".venvs" / "services" / "bin" / "eventpipe"
PORTS = ("ingest", "kinesis", "metrics", "transform-metrics", "ingest-metrics")  # each is `up --NAME-port`
MONITORING_PORTS = ("prometheus", "dashboard")


@dataclass
class AlertReceiver:
    """A Slack-compatible webhook on 127.0.0.1 that keeps every JSON body it receives."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LocalStack:
    state_dir: Path
    ports: dict[str, int]
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['ingest']}"

    @property
    def kinesis_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['kinesis']}"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.ports['dashboard']}"

    def cli(self, *args: str, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess[str]:
        """`eventpipe ARGS --state-dir STATE`; with `check`, a non-zero exit raises with the stack's logs."""
        out = subprocess.run([str(EVENTPIPE), *args, "--state-dir", str(self.state_dir)], capture_output=True,
                             text=True, timeout=timeout, env=self.env)
        if check and out.returncode != 0:
            raise RuntimeError(f"eventpipe {' '.join(args)} failed: {out.stdout}{out.stderr}\n{self.logs()}")
        return out

    def logs(self, lines: int = 25) -> str:
        return stack_logs(self.log_path, self.state_dir, lines)

    @contextmanager
    def traffic(self, count: int, rate: int) -> Iterator[None]:
        """`eventpipe send` running in the background for the block (bounded by count and rate), stopped by PID
        after it: a rate over the last minute stays above zero however long the page takes to load."""
        proc = subprocess.Popen([str(EVENTPIPE), "send", "--count", str(count), "--rate", str(rate),
                                 "--state-dir", str(self.state_dir)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=self.env)
        try:
            yield
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """One instant query to the stack's Prometheus."""
        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        with urllib.request.urlopen(f"{self.prometheus}/api/v1/query?{urllib.parse.urlencode(params)}",
                                    timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for_series(self, promql: str, timeout: float = 180) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(promql)
            if result:
                return result
            time.sleep(2)
        raise AssertionError(f"Prometheus has no series for {promql!r} after {timeout}s\n{self.logs()}")


def start(state_dir: Path, env: dict[str, str], *, monitoring: bool, options: Sequence[str] = (),
          wait_timeout: float = 180) -> LocalStack:
    """`eventpipe up` on free ports with a 1 s commit and transform interval, returned once `eventpipe wait` says
    every component is up (stopped again if it never is)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    names = PORTS + MONITORING_PORTS if monitoring else PORTS
    ports = {name: free_port() for name in names}
    port_options = [item for name in names for item in (f"--{name}-port", str(ports[name]))]
    log_path = state_dir.parent / f"up-{state_dir.name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(EVENTPIPE), "up", "--state-dir", str(state_dir), *port_options,
             "--commit-interval", "1", "--transform-interval", "1", "--transform-settle", "4", *options,
             *([] if monitoring else ["--no-monitoring"])],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    stack = LocalStack(state_dir, ports, proc, log_path, env)
    waited = stack.cli("wait", "--timeout", str(wait_timeout), timeout=wait_timeout + 20)
    if waited.returncode != 0:
        stop(stack)
        raise RuntimeError(f"the stack did not start: {waited.stdout}{waited.stderr}\n{stack.logs()}")
    return stack


def stop(stack: LocalStack, timeout: float = 60) -> int:
    """SIGTERM `up` (what Ctrl-C does) and wait; returns its exit code."""
    if stack.proc.poll() is None:
        stack.proc.send_signal(signal.SIGTERM)
        try:
            stack.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(stack.proc.pid, signal.SIGKILL)
            stack.proc.wait(timeout=10)
    return stack.proc.returncode


def child_pids(state_dir: Path) -> list[int]:
    info = json.loads((state_dir / "stack.json").read_text())
    return [c["pid"] for c in info["components"].values() if c.get("pid")]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(condition: Any, timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
