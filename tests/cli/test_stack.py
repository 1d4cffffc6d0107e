"""The local stack's process handling with real child processes: ready checks, restart after a crash, one `up`
per state folder, and a clean stop by PID.

The children here are kinesalite (the real stream server `up` starts) and Python's http.server standing in for
a service, so the runner is tested without waiting for the whole pipeline (tests/e2e runs the real one).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from eventpipe_cli.locations import kinesalite_bin
from eventpipe_cli.stack import ComponentSpec, Stack, StackConfig, StackError, create_stream, pipeline_env
from eventpipe_cli.state import StatePaths, read_json
from eventpipe_cli.status import pid_alive, shards
from eventpipe_cli.supervisor import RestartPolicy

from tests.helpers.servers import free_port


def _stack(tmp_path: Path, policy: RestartPolicy | None = None) -> Stack:
    paths = StatePaths.at(tmp_path / "state")
    config = StackConfig(state_dir=paths.root, kinesis_port=free_port(), ingest_port=free_port(), start_timeout=30)
    web_port = free_port()
    env = {**os.environ, **pipeline_env(config, paths)}
    specs = [
        ComponentSpec("kinesalite", [str(kinesalite_bin()), "--host", "127.0.0.1", "--port", str(config.kinesis_port),
                                     "--path", str(paths.kinesis), "--createStreamMs", "0"], env,
                      port=config.kinesis_port),
        ComponentSpec("web", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(web_port)], env,
                      port=web_port, ready_url=f"http://127.0.0.1:{web_port}/"),
    ]
    lines: list[str] = []
    return Stack(config, paths, specs, say=lines.append,
                 policy=policy or RestartPolicy(max_restarts=2, window=60, base_delay=0.1))


def _supervise_until(stack: Stack, condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.supervise_once(time.monotonic())
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def test_start_restart_stop_and_resume(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    stack.acquire()
    try:
        stack.start()
        pids = {name: child.proc.pid for name, child in stack.children.items() if child.proc}
        info = read_json(stack.paths.stack)
        assert info is not None and set(info["components"]) == {"kinesalite", "web"}
        assert len(shards(f"http://127.0.0.1:{stack.config.kinesis_port}", stack.config.stream_name)) == 2
        assert stat_mode(stack.paths.dev_key) == 0o600

        # A second `up` on the same state folder is refused while this one holds it.
        with pytest.raises(StackError, match="another `eventpipe up`"):
            _stack(tmp_path).acquire()

        os.kill(pids["web"], signal.SIGKILL)
        web = stack.children["web"]
        _supervise_until(stack, lambda: web.proc is not None and web.proc.pid != pids["web"]
                         and web.exit_code() is None)
        assert len(web.restarts) == 1
    finally:
        stack.stop(grace=5)
    for child in stack.children.values():
        assert child.proc is not None and child.proc.poll() is not None
        assert not pid_alive(child.proc.pid)
    assert not stack.paths.stack.exists()

    # Resume: the stream kept in kinesalite's LevelDB folder is found again, not recreated.
    again = _stack(tmp_path)
    again.config = StackConfig(state_dir=again.paths.root, kinesis_port=stack.config.kinesis_port, start_timeout=30)
    again.acquire()
    try:
        again.specs = [s for s in stack.specs if s.name == "kinesalite"]
        again.start()
        create_stream(f"http://127.0.0.1:{stack.config.kinesis_port}", stack.config.stream_name, 5)
        assert len(shards(f"http://127.0.0.1:{stack.config.kinesis_port}", stack.config.stream_name)) == 2
    finally:
        again.stop(grace=5)


def test_a_crash_loop_stops_with_the_components_name(tmp_path: Path) -> None:
    stack = _stack(tmp_path, RestartPolicy(max_restarts=1, window=60, base_delay=0.05))
    stack.acquire()
    try:
        stack.start()
        web = stack.children["web"]
        with pytest.raises(StackError, match="web exited"):
            for _ in range(200):
                if web.proc is not None and web.exit_code() is None and web.restart_at is None:
                    os.kill(web.proc.pid, signal.SIGKILL)
                    web.proc.wait()
                stack.supervise_once(time.monotonic())
                time.sleep(0.05)
    finally:
        stack.stop(grace=5)


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
