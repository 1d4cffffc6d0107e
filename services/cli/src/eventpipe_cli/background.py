"""`up --detach` and `down`: the local stack as a background process.

`up --detach` starts `python -m eventpipe_cli up ...` (the same options, without --detach) in its own session
with its output in <state>/logs/up.log, waits until every planned component is ready, and returns; the
background `up` supervises the children exactly as a foreground one does. `down` sends that process SIGTERM
(what Ctrl-C does to a foreground `up`: children stopped in reverse order, by PID) and waits until it is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventpipe_cli.state import StatePaths, read_json
from eventpipe_cli.status import pid_alive


def forwarded_options(command: Any, params: dict[str, Any], drop: set[str]) -> list[str]:
    """The command line that gives `command` (a typer/click command) these parameter values again (all but
    `drop`). Pure."""
    argv: list[str] = []
    for param in command.params:
        if param.param_type_name != "option" or param.name is None or param.name in drop:
            continue
        value = params.get(param.name)
        if value is None:
            continue
        if param.is_flag and param.secondary_opts:
            argv.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            if value:
                argv.append(param.opts[0])
        else:
            argv.extend([param.opts[0], str(value)])
    return argv


def stack_ready(info: dict[str, Any] | None, pid: int | None = None) -> tuple[bool, str]:
    """Whether stack.json says every planned component is up (by the `up` with this pid, when given)."""
    if info is None:
        return False, "starting"
    if pid is not None and info.get("pid") != pid:
        return False, "starting"
    planned = list(info.get("planned", []))
    started = set(info.get("components", {}))
    done = sum(1 for name in planned if name in started)
    return (bool(planned) and pid_alive(info.get("pid")) and done == len(planned),
            f"{done}/{len(planned)} components up" if planned else "starting")


def start(paths: StatePaths, up_argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `up` in the background, detached from this terminal (own session, stdin from /dev/null)."""
    paths.create()
    log = open(paths.log("up"), "ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "eventpipe_cli", "up", *up_argv], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                env=env if env is not None else dict(os.environ))
    finally:
        log.close()


def wait_started(paths: StatePaths, proc: subprocess.Popen[bytes], timeout: float,
                 update: Callable[[str], None]) -> str | None:
    """None once the stack is ready; otherwise why not ("exited with code 1", "timed out")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            return f"`eventpipe up` exited with code {code}"
        ready, detail = stack_ready(read_json(paths.stack), proc.pid)
        update(detail)
        if ready:
            return None
        time.sleep(0.3)
    return "timed out"


def stop(pid: int, timeout: float, update: Callable[[str], None]) -> bool:
    """SIGTERM the `up` process and wait until it exited; False when it is still there after `timeout`."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid) or _is_zombie(pid):
            return True
        update(f"up (pid {pid}) is stopping its components")
        time.sleep(0.3)
    return False


def _is_zombie(pid: int) -> bool:
    """An exited child of ours not reaped yet (only when `down` runs in the process that started `up`)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"
