"""The CLI as a user drives it, over real processes: `up --detach` starts a real stack (kinesalite, consumer,
ingest) on free ports, then `send`, `status -o`, `query -o`, `logs [-f]`, `where`, shell completion and `down`
run as subprocesses, and their exit codes are the documented ones (services/cli/README.md)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eventpipe_cli.exitcodes import ExitCode
from eventpipe_cli.main import app
from typer.main import get_command

from tests.helpers.servers import free_port, stack_env

EVENTPIPE = Path(sys.executable).parent / "eventpipe"


@dataclass(frozen=True)
class Live:
    state: Path
    up_output: str

    def cli(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(EVENTPIPE), *args], capture_output=True, text=True, timeout=timeout,
                              env=env or stack_env())


def pid_alive(pid: int) -> bool:
    """Running, not a zombie: the detached `up` is reparented, and its new parent reaps it when it gets to it."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    state = tmp_path_factory.mktemp("cli") / "state"
    up = subprocess.run(
        [str(EVENTPIPE), "up", "-d", "--state-dir", str(state), "--ingest-port", str(free_port()),
         "--kinesis-port", str(free_port()), "--ingest-metrics-port", str(free_port()),
         "--metrics-port", str(free_port()), "--no-transform",
         "--no-monitoring", "--commit-interval", "1", "--timeout", "180"],
        capture_output=True, text=True, timeout=240, env=stack_env())
    stack = Live(state, up.stdout)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        sent = stack.cli("send", "--state-dir", str(state), "--count", "300", "--invalid", "0.05", "--wait",
                         "--timeout", "120")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        yield stack
    finally:
        stack.cli("down", "--state-dir", str(state), timeout=200)


def test_up_detach_returns_with_the_stack_running_and_says_where_to_look(live: Live) -> None:
    info = json.loads((live.state / "stack.json").read_text())
    assert pid_alive(info["pid"]) and set(info["components"]) == {"kinesalite", "consumer", "ingest"}
    assert "Where to look" in live.up_output and f"down --state-dir {live.state}" in live.up_output
    again = live.cli("up", "--detach", "--state-dir", str(live.state), "--no-transform", "--no-monitoring")
    assert again.returncode == ExitCode.FAILED and "already running" in again.stderr


def test_status_in_three_formats(live: Live) -> None:
    as_json = live.cli("status", "--state-dir", str(live.state), "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["version"] == 1 and report["stack"]["running"] is True
    assert {"state_dir", "stack", "shards", "lag_ms", "consumer", "jobs", "tables", "transform"} <= set(report)
    assert report["jobs"]["committed"]["accepted"] == report["jobs"]["committed"]["committed"] > 0
    assert report["tables"]["raw_events"]["total_records"] is not None
    as_csv = live.cli("status", "--state-dir", str(live.state), "-o", "csv")
    rows = dict(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows["key"] == "value" and rows["version"] == "1" and rows["stack.running"] == "True"
    assert rows["tables.raw_events.total_records"] == str(report["tables"]["raw_events"]["total_records"])
    table = live.cli("status", "--state-dir", str(live.state), env={**stack_env(), "COLUMNS": "200"})
    assert table.returncode == 0 and "Iceberg tables" in table.stdout and "ingest jobs" in table.stdout


def test_query_in_three_formats(live: Live) -> None:
    sql = "select event_type, count(*) as n, max(ingested_at) as last from raw_events group by 1 order by 1"
    as_json = live.cli("query", "--state-dir", str(live.state), "-o", "json", sql)
    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    assert answer["version"] == 1 and answer["columns"] == ["event_type", "n", "last"]
    assert answer["truncated"] is False and sum(row["n"] for row in answer["rows"]) > 0
    assert all("T" in row["last"] for row in answer["rows"])  # TIMESTAMPTZ as ISO 8601 (needs pytz in DuckDB)
    as_csv = live.cli("query", "--state-dir", str(live.state), "-o", "csv", sql)
    parsed = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert parsed[0] == answer["columns"]
    assert [[r[0], int(r[1])] for r in parsed[1:]] == [[row["event_type"], row["n"]] for row in answer["rows"]]
    limited = live.cli("query", "--state-dir", str(live.state), "-o", "json", "--limit", "1", sql)
    assert json.loads(limited.stdout)["truncated"] is True
    bad = live.cli("query", "--state-dir", str(live.state), "select nope from raw_events")
    assert bad.returncode == ExitCode.FAILED and "nope" in bad.stderr


def test_logs_of_one_component_of_all_and_an_unknown_one(live: Live) -> None:
    one = live.cli("logs", "--state-dir", str(live.state), "ingest", "--tail", "5")
    assert one.returncode == 0 and 0 < len(one.stdout.splitlines()) <= 5, one.stdout + one.stderr
    every = live.cli("logs", "--state-dir", str(live.state), "--tail", "2")
    prefixes = {line.split("]", 1)[0] + "]" for line in every.stdout.splitlines()}
    assert {"[consumer]", "[ingest]", "[kinesalite]", "[up]"} <= prefixes, every.stdout
    unknown = live.cli("logs", "--state-dir", str(live.state), "nosuch")
    assert unknown.returncode == ExitCode.USAGE and "consumer" in unknown.stderr


def test_where_and_no_stack_exit_codes(live: Live, tmp_path: Path) -> None:
    where = live.cli("where", "--state-dir", str(live.state))
    assert where.returncode == 0 and "Where to look" in where.stdout
    assert live.cli("where", "--state-dir", str(tmp_path)).returncode == ExitCode.NO_STACK
    assert live.cli("logs", "--state-dir", str(tmp_path)).returncode == ExitCode.NO_STACK
    assert live.cli("send", "--state-dir", str(tmp_path), "--count", "1").returncode == ExitCode.NO_STACK
    timed_out = live.cli("wait", "--state-dir", str(tmp_path), "--timeout", "1")
    assert timed_out.returncode == ExitCode.TIMEOUT and "waiting for the stack" in timed_out.stderr
    usage = live.cli("query", "--state-dir", str(live.state), "-o", "yaml", "select 1")
    assert usage.returncode == ExitCode.USAGE


def test_shell_completion(live: Live) -> None:
    env = {**stack_env(), "_EVENTPIPE_COMPLETE": "complete_bash", "COMP_WORDS": "eventpipe lo", "COMP_CWORD": "1"}
    commands = subprocess.run([str(EVENTPIPE)], capture_output=True, text=True, env=env, timeout=60)
    assert commands.stdout.split() == ["logs"], commands.stdout + commands.stderr
    env.update(COMP_WORDS=f"eventpipe logs --state-dir {live.state} co", COMP_CWORD="4")
    components = subprocess.run([str(EVENTPIPE)], capture_output=True, text=True, env=env, timeout=60)
    assert components.stdout.split() == ["consumer"], components.stdout + components.stderr
    script = live.cli("--show-completion", "bash")
    assert script.returncode == 0 and "_eventpipe_completion" in script.stdout


def test_every_option_and_argument_has_help() -> None:
    command = get_command(app)
    missing = [f"{name} {param.name}" for name, sub in command.commands.items()  # type: ignore[attr-defined]
               for param in sub.params if not getattr(param, "help", None)]
    assert not missing, missing


def test_down_stops_every_process_and_ends_logs_follow(live: Live) -> None:
    """Last in this module: it stops the stack the others use."""
    info = json.loads((live.state / "stack.json").read_text())
    pids = [info["pid"], *(c["pid"] for c in info["components"].values())]
    follow = subprocess.Popen([str(EVENTPIPE), "logs", "--state-dir", str(live.state), "ingest", "-f",
                               "--tail", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=stack_env())
    try:
        time.sleep(1.0)
        assert follow.poll() is None  # following while the stack runs
        sent = live.cli("send", "--state-dir", str(live.state), "--count", "5")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        down = live.cli("down", "--state-dir", str(live.state), timeout=200)
        assert down.returncode == 0, down.stdout + down.stderr
        assert "stopping the stack" in down.stderr  # the wait shows itself
        out, _ = follow.communicate(timeout=30)  # -f ends once the stack has stopped
    finally:
        if follow.poll() is None:
            follow.kill()
    assert follow.returncode == 0
    assert '"message": "ingested"' in out, out  # the line the request above wrote, printed as it came
    assert not [pid for pid in pids if pid_alive(pid)]
    assert not (live.state / "stack.json").exists()
    again = live.cli("down", "--state-dir", str(live.state))
    assert again.returncode == 0 and "no running stack" in again.stdout
