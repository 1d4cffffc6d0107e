"""Helpers of the end-to-end tests: the whole local stack (`eventpipe up`) as a subprocess on free ports, stopped as
Ctrl-C would, and polling until a condition holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.servers import free_port, stack_env, stack_logs

EVENTPIPE = Path(sys.executable).parent / "eventpipe"


@dataclass
class AlertReceiver:
    """A Slack-compatible webhook on 127.0.0.1 that keeps every JSON body it receives."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunningStack:
    state_dir: Path
    ingest_port: int
    kinesis_port: int
    metrics_port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ingest_port}"

    @property
    def kinesis_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.kinesis_port}"

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(EVENTPIPE), *args, "--state-dir", str(self.state_dir)], capture_output=True,
                              text=True, timeout=timeout, env=stack_env())

    def logs(self) -> str:
        return stack_logs(self.log_path, self.state_dir)


def start_stack(state_dir: Path, env: dict[str, str]) -> RunningStack:
    state_dir.mkdir(parents=True, exist_ok=True)
    ports = {"ingest": free_port(), "kinesis": free_port(), "metrics": free_port(), "transform": free_port(),
             "ingest-metrics": free_port()}
    log_path = state_dir.parent / f"up-{state_dir.name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(EVENTPIPE), "up", "--state-dir", str(state_dir), "--ingest-port", str(ports["ingest"]),
             "--kinesis-port", str(ports["kinesis"]), "--metrics-port", str(ports["metrics"]),
             "--transform-metrics-port", str(ports["transform"]), "--ingest-metrics-port", str(ports["ingest-metrics"]),
             "--commit-interval", "1", "--transform-interval", "1", "--transform-settle", "4", "--no-monitoring"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    stack = RunningStack(state_dir, ports["ingest"], ports["kinesis"], ports["metrics"], proc, log_path)
    waited = stack.cli("wait", "--timeout", "180", timeout=200)
    if waited.returncode != 0:
        stop_stack(stack)
        raise RuntimeError(f"the stack did not start: {waited.stdout}{waited.stderr}\n{stack.logs()}")
    return stack


def child_pids(state_dir: Path) -> list[int]:
    info = json.loads((state_dir / "stack.json").read_text())
    return [c["pid"] for c in info["components"].values() if c.get("pid")]


def stop_stack(stack: RunningStack, timeout: float = 60) -> int:
    """SIGTERM `up` (what Ctrl-C does) and wait; returns its exit code."""
    if stack.proc.poll() is None:
        stack.proc.send_signal(signal.SIGTERM)
        try:
            stack.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(stack.proc.pid, signal.SIGKILL)
            stack.proc.wait(timeout=10)
    return stack.proc.returncode


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
